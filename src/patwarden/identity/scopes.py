"""Resource ids and scopes patwarden asks Entra for."""

from __future__ import annotations

from patwarden.domain.scopes import AZURE_DEVOPS_RESOURCE

__all__ = [
    "AZURE_DEVOPS_DEFAULT_SCOPE",
    "AZURE_DEVOPS_RESOURCE",
    "KEY_VAULT_SCOPE",
    "PAT_MANAGE_SCOPE",
    "PAT_READ_SCOPE",
    "PAT_SCOPES",
]
AZURE_DEVOPS_DEFAULT_SCOPE = f"{AZURE_DEVOPS_RESOURCE}/.default"
# Delegated scopes the PAT Lifecycle API requires since June 2025 (contract §2). MSAL adds
# offline_access (refresh token), openid and profile by itself.
PAT_READ_SCOPE = f"{AZURE_DEVOPS_RESOURCE}/vso.pats"
PAT_MANAGE_SCOPE = f"{AZURE_DEVOPS_RESOURCE}/vso.pats_manage"
PAT_SCOPES: tuple[str, ...] = (PAT_READ_SCOPE, PAT_MANAGE_SCOPE)
KEY_VAULT_SCOPE = "https://vault.azure.net/.default"
