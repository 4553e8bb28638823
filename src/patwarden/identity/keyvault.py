"""Building Key Vault secret clients the same way everywhere, and explaining their failures."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from patwarden.errors import DOCS, AuthError

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken, AccessTokenInfo, TokenCredential
    from azure.keyvault.secrets import SecretClient

    from patwarden.config.schema import AzureConfig

# Vault DNS suffixes of the public and sovereign clouds: the challenge resource check works there.
AZURE_VAULT_SUFFIXES = (
    ".vault.azure.net",
    ".vault.azure.cn",
    ".vault.usgovcloudapi.net",
    ".vault.microsoftazure.de",
)


PUBLIC_VAULT_SCOPE = "https://vault.azure.net/.default"


def vault_scope(vault_url: str, azure: AzureConfig | None = None) -> str:
    """The only scope a Key Vault token is ever asked for, whatever the vault's challenge says.

    ``https://vault.<suffix>/.default`` for a vault in a sovereign cloud (``*.vault.azure.cn``,
    ``*.vault.usgovcloudapi.net``, ...). A custom host name (a private endpoint, the emulator) gets
    what ``azure`` says (:meth:`AzureConfig.vault_scope`: its ``custom_vault_hosts`` entry's cloud
    or scope, else the configured cloud's); without ``azure``, the public cloud's.
    """
    if azure is not None:
        return azure.vault_scope(vault_url)
    host = (urlsplit(vault_url).hostname or "").lower()
    for suffix in AZURE_VAULT_SUFFIXES:
        if host.endswith(suffix):
            return f"https://{suffix.lstrip('.')}/.default"
    return PUBLIC_VAULT_SCOPE


class VaultScopedCredential:
    """Wraps a credential so a vault only ever gets a token for the Key Vault audience.

    The SDK asks for the scope the vault's ``WWW-Authenticate`` challenge names; for a host outside
    Microsoft's vault domains it cannot check that scope, so a fake vault could name Azure DevOps
    and receive a bearer token for it (then the PAT). This wrapper ignores the requested scopes
    and asks for :func:`vault_scope` instead (docs/security.md, "Key Vault").
    """

    def __init__(self, credential: TokenCredential, *, scope: str) -> None:
        self._credential = credential
        self.scope = scope

    def __repr__(self) -> str:
        return f"VaultScopedCredential(scope={self.scope!r})"

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """A token for :attr:`scope` (*scopes*, chosen by the vault, are ignored)."""
        return self._credential.get_token(self.scope, **kwargs)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        """A token for :attr:`scope` through the newer protocol (*scopes* are ignored)."""
        from azure.core.credentials import AccessTokenInfo

        inner = getattr(self._credential, "get_token_info", None)
        if inner is not None:
            info: AccessTokenInfo = inner(self.scope, options=options)
            return info
        token = self._credential.get_token(self.scope, **dict(options or {}))
        return AccessTokenInfo(token.token, token.expires_on)

    def close(self) -> None:
        """Nothing of its own to close (the wrapped credential belongs to its owner)."""


def is_azure_vault_host(vault_url: str) -> bool:
    """Whether ``vault_url`` is a real Azure Key Vault host (where the challenge is verified)."""
    host = (urlsplit(vault_url).hostname or "").lower()
    return host.endswith(AZURE_VAULT_SUFFIXES)


def secret_client(
    *, vault_url: str, credential: TokenCredential, azure: AzureConfig
) -> SecretClient:
    """A ``SecretClient`` honouring the configured CA bundle.

    ``verify_challenge_resource`` stays on for ``*.vault.azure.net`` and is switched off only for
    other hosts (an emulator or private endpoint), where the challenge names a different resource;
    either way the token is only ever asked for :func:`vault_scope`
    (:class:`VaultScopedCredential`).
    TLS verification itself is never switched off.
    """
    from azure.keyvault.secrets import SecretClient

    return SecretClient(
        vault_url,
        VaultScopedCredential(credential, scope=vault_scope(vault_url, azure)),
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
