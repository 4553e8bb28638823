"""Building Key Vault secret clients the same way everywhere, and explaining their failures."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from patwarden.errors import DOCS, AuthError

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.keyvault.secrets import SecretClient

    from patwarden.config.schema import AzureConfig

# Vault DNS suffixes of the public and sovereign clouds: the challenge resource check works there.
AZURE_VAULT_SUFFIXES = (
    ".vault.azure.net",
    ".vault.azure.cn",
    ".vault.usgovcloudapi.net",
    ".vault.microsoftazure.de",
)


def is_azure_vault_host(vault_url: str) -> bool:
    """Whether ``vault_url`` is a real Azure Key Vault host (where the challenge is verified)."""
    host = (urlsplit(vault_url).hostname or "").lower()
    return host.endswith(AZURE_VAULT_SUFFIXES)


def secret_client(
    *, vault_url: str, credential: TokenCredential, azure: AzureConfig
) -> SecretClient:
    """A ``SecretClient`` honouring the configured CA bundle.

    ``verify_challenge_resource`` stays on for ``*.vault.azure.net`` and is switched off only for
    other hosts (an emulator or private endpoint), where the challenge names a different resource.
    TLS verification itself is never switched off.
    """
    from azure.keyvault.secrets import SecretClient

    return SecretClient(
        vault_url,
        credential,
        verify_challenge_resource=is_azure_vault_host(vault_url),
        connection_verify=azure.verify,
    )


def key_vault_failure(
    err: Exception, *, action: str, vault_url: str, secret: str, identity: str
) -> AuthError:
    """Translate an azure-core exception from a Key Vault call into an actionable AuthError."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
    )

    target = f"secret {secret!r} in {vault_url}"
    if isinstance(err, ClientAuthenticationError) or (
        isinstance(err, HttpResponseError) and err.status_code in (401, 403)
    ):
        return AuthError(
            f"identity {identity!r} may not {action} {target}",
            hint=(
                f"grant {identity!r} the 'Key Vault Secrets Officer' role (or get/set access "
                "policy) on the vault"
            ),
            docs=f"{DOCS}/identities.md#key-vault-access-denied",
        )
    if isinstance(err, ServiceRequestError):
        return AuthError(
            f"cannot reach Key Vault to {action} {target}: {type(err).__name__}",
            hint=(
                "check vault_url, DNS/network access to the vault, and azure.ca_bundle if a "
                "proxy inspects TLS"
            ),
        )
    status = getattr(err, "status_code", None)
    return AuthError(
        f"Key Vault refused to {action} {target} (HTTP {status}, {type(err).__name__})",
        hint="retry later; if it persists check the vault's firewall and the secret's state",
    )
