"""Resource ids and scopes patwarden asks Entra for."""

from __future__ import annotations

from patwarden.domain.scopes import (
    AZURE_DEVOPS_DEFAULT_SCOPE,
    AZURE_DEVOPS_RESOURCE,
    PAT_MANAGE_SCOPE,
    PAT_READ_SCOPE,
    PAT_SCOPES,
)

__all__ = [
    "AZURE_DEVOPS_DEFAULT_SCOPE",
    "AZURE_DEVOPS_RESOURCE",
    "KEY_VAULT_SCOPE",
    "PAT_MANAGE_SCOPE",
    "PAT_READ_SCOPE",
    "PAT_SCOPES",
]
# The Azure DevOps ones are pure facts in patwarden.domain.scopes (azdo uses them too).
KEY_VAULT_SCOPE = "https://vault.azure.net/.default"
