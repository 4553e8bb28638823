"""The configuration file's model: Azure endpoints, token caches, identities and :class:`Config`.

Every problem is reported together, each with its key path and a fix (see
:mod:`patwarden.config.problems`); scalar types and secret references are in
:mod:`patwarden.config.refs`, the ``tokens:`` section in :mod:`patwarden.config.tokens`. Load a
file with :func:`patwarden.config.model.load_config`. The reference for every key is
``docs/configuration.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    model_validator,
)
from pydantic_core import PydanticCustomError

from patwarden.config.clouds import (
    CloudName,
    authority_cloud,
    cloud_vault_scope,
    domain_cloud,
)
from patwarden.config.refs import (
    KEY_VAULT_NAME_PATTERN,
    REF_MODELS,
    CacheKeyRef,
    ConfigPath,
    Duration,
    Guid,
    HttpsUrl,
    IdentityName,
    Organization,
    SecretRef,
    StrictModel,
    TenantId,
)
from patwarden.config.service import CHANNEL_TAGS, NotificationsConfig, ServiceConfig
from patwarden.config.state import StateConfig
from patwarden.config.tokens import RotationSettings, TokenConfig

PUBLIC_AUTHORITY_HOST = "https://login.microsoftonline.com"
PUBLIC_AZURE_DEVOPS_URL = "https://dev.azure.com"
PUBLIC_VSSPS_URL = "https://vssps.dev.azure.com"
DEFAULT_STATE_DIR = "~/.local/state/patwarden"
DEFAULT_WIF_TOKEN_FILE = "/var/run/secrets/azure/tokens/azure-identity-token"  # noqa: S105
# Entra hosts whose instance metadata MSAL/azure-identity know; anything else needs
# `disable_instance_discovery=True` (emulators, private clouds).
WELL_KNOWN_AUTHORITY_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoftonline.us",
        "login.chinacloudapi.cn",
        "login.partner.microsoftonline.cn",
    }
)


# --- Azure endpoints ---------------------------------------------------------------------------


VaultHostKind = Literal["private_endpoint", "emulator"]


class CustomVaultHost(StrictModel):
    """A vault host outside the cloud's vault domain, with the audience of its tokens."""

    kind: VaultHostKind = "private_endpoint"
    cloud: CloudName | None = None
    scope: HttpsUrl | None = Field(
        default=None,
        pattern=r"^https://[^/]+/\.default$",
        examples=["https://vault.usgovcloudapi.net/.default"],
    )

    @model_validator(mode="after")
    def _one_audience(self) -> CustomVaultHost:
        if self.cloud is not None and self.scope is not None:
            raise PydanticCustomError("vault_audience", "name either cloud or scope, not both")
        return self


class AzureConfig(StrictModel):
    """Where Entra ID and Azure DevOps live. Defaults are public Azure; override for an emulator."""

    authority_host: HttpsUrl = PUBLIC_AUTHORITY_HOST
    azure_devops_url: HttpsUrl = PUBLIC_AZURE_DEVOPS_URL
    vssps_url: HttpsUrl = PUBLIC_VSSPS_URL
    tenant_id: TenantId | None = None
    ca_bundle: ConfigPath | None = None
    # Vault hosts outside the cloud's vault domain that are meant (config check warns otherwise),
    # optionally with the cloud or exact scope of their tokens (default: the configured cloud's).
    custom_vault_hosts: dict[str, VaultHostKind | CustomVaultHost] = Field(
        default_factory=dict, examples=[{"kv.internal.example": "private_endpoint"}]
    )

    def vault_scope(self, vault_url: str) -> str:
        """The only scope a Key Vault token for *vault_url* is asked for (docs/security.md).

        A Microsoft vault domain names its cloud; a custom host takes its ``custom_vault_hosts``
        entry's ``scope`` or ``cloud``, else the configured cloud's (``authority_host``; public
        for an unknown authority such as the emulator).
        """
        cloud = domain_cloud(vault_url)
        if cloud is not None:
            return cloud_vault_scope(cloud)
        entry = self.custom_vault_hosts.get((urlsplit(vault_url).hostname or "").lower())
        if isinstance(entry, CustomVaultHost):
            if entry.scope is not None:
                return entry.scope
            if entry.cloud is not None:
                return cloud_vault_scope(entry.cloud)
        return cloud_vault_scope(authority_cloud(self.authority_host) or "public")

    @property
    def is_well_known_authority(self) -> bool:
        """Whether MSAL can look up this authority's instance metadata (public/sovereign clouds)."""
        return (urlsplit(self.authority_host).hostname or "") in WELL_KNOWN_AUTHORITY_HOSTS

    @property
    def verify(self) -> str | bool:
        """The ``verify`` / ``connection_verify`` value for requests-based clients (Azure SDK,
        MSAL): True, or a PEM file of the default CAs plus ``ca_bundle`` (it adds trust)."""
        from patwarden.tls import requests_verify

        return requests_verify(self.ca_bundle)


# --- token cache storage -----------------------------------------------------------------------


class FileCacheConfig(StrictModel):
    """The rotator's token cache in an encrypted file (default: ``state_dir/<identity>.cache``)."""

    kind: Literal["file"] = "file"
    path: ConfigPath | None = None
    key: CacheKeyRef | None = Field(default=None, examples=[{"env": "PATWARDEN_CACHE_KEY"}])


class KeyVaultCacheConfig(StrictModel):
    """The rotator's token cache as a Key Vault secret, read and written by another identity."""

    kind: Literal["key_vault"]
    vault_url: HttpsUrl = Field(examples=["https://ops-kv.vault.azure.net"])
    secret: str = Field(pattern=KEY_VAULT_NAME_PATTERN, examples=["patwarden-rotator-cache"])
    identity: IdentityName = Field(examples=["writer"])
    key: CacheKeyRef | None = None
    # The refresh token is sealed with `key`; `plaintext: true` leaves it to Key Vault's own
    # protection (config check and doctor warn; docs/security.md).
    plaintext: bool = False

    @model_validator(mode="after")
    def _key_or_plaintext(self) -> KeyVaultCacheConfig:
        if self.key is None and not self.plaintext:
            raise PydanticCustomError(
                "cache_plaintext",
                "a Key Vault token cache needs `key` to encrypt the refresh token",
            )
        if self.key is not None and self.plaintext:
            raise PydanticCustomError(
                "cache_plaintext", "`plaintext: true` contradicts `key`: the cache is encrypted"
            )
        return self


def _cache_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        kind = value.get("kind", "file")
        return f"cache={kind}" if kind in ("file", "key_vault") else None
    return (
        f"cache={value.kind}" if isinstance(value, FileCacheConfig | KeyVaultCacheConfig) else None
    )


CacheConfig = Annotated[
    Annotated[FileCacheConfig, Tag("cache=file")]
    | Annotated[KeyVaultCacheConfig, Tag("cache=key_vault")],
    Discriminator(
        _cache_tag, custom_error_type="cache_kind", custom_error_message="unknown cache kind"
    ),
]


# --- identities --------------------------------------------------------------------------------


class UserIdentity(StrictModel):
    """A dedicated Entra user, signed in once with ``patwarden login``; the only rotator kind."""

    kind: Literal["user"]
    client_id: Guid = Field(examples=["00000000-0000-0000-0000-000000000000"])
    tenant_id: TenantId | None = None
    username: str | None = None
    sign_in_frequency: Duration | None = None
    cache: CacheConfig = FileCacheConfig()


class CertificateConfig(StrictModel):
    """A PEM (or PKCS#12) certificate with its private key, for a service principal."""

    path: ConfigPath = Field(examples=["/etc/patwarden/writer.pem"])
    password: SecretRef | None = None
    send_certificate_chain: bool = False


class ServicePrincipalIdentity(StrictModel):
    """An app registration authenticating with a client secret or a certificate."""

    kind: Literal["service_principal"]
    client_id: Guid = Field(examples=["00000000-0000-0000-0000-000000000000"])
    tenant_id: TenantId | None = None
    client_secret: SecretRef | None = Field(default=None, examples=[{"env": "AZURE_CLIENT_SECRET"}])
    certificate: CertificateConfig | None = None

    @model_validator(mode="after")
    def _one_credential(self) -> ServicePrincipalIdentity:
        if (self.client_secret is None) == (self.certificate is None):
            raise PydanticCustomError(
                "sp_credential", "needs exactly one of client_secret or certificate"
            )
        return self


class ManagedIdentity(StrictModel):
    """An Azure managed identity: system-assigned, or user-assigned when ``client_id`` is set."""

    kind: Literal["managed_identity"]
    client_id: Guid | None = None


class WorkloadIdentity(StrictModel):
    """Workload identity federation: a projected token file exchanged for an Entra token."""

    kind: Literal["workload_identity"]
    client_id: Guid = Field(examples=["00000000-0000-0000-0000-000000000000"])
    tenant_id: TenantId | None = None
    token_file: ConfigPath = Path(DEFAULT_WIF_TOKEN_FILE)


class AzureCliIdentity(StrictModel):
    """Whoever is signed in to the Azure CLI (``az login``): handy on a workstation."""

    kind: Literal["azure_cli"]
    tenant_id: TenantId | None = None


class LegacyPasswordIdentity(StrictModel):
    """Username + password (ROPC) on an MFA-exempt account. Deprecated and insecure: opt-in only."""

    kind: Literal["legacy_password"]
    client_id: Guid = Field(examples=["00000000-0000-0000-0000-000000000000"])
    tenant_id: TenantId | None = None
    username: str = Field(examples=["svc-legacy@contoso.com"])
    password: SecretRef = Field(examples=[{"env": "PATWARDEN_LEGACY_PASSWORD"}])
    legacy_password_flow: bool = False


IDENTITY_MODELS: dict[str, type[StrictModel]] = {
    "user": UserIdentity,
    "service_principal": ServicePrincipalIdentity,
    "managed_identity": ManagedIdentity,
    "workload_identity": WorkloadIdentity,
    "azure_cli": AzureCliIdentity,
    "legacy_password": LegacyPasswordIdentity,
}
# Kinds that hold an application (not a user) token: the PAT Lifecycle API refuses them.
APP_IDENTITY_KINDS = frozenset(
    {"service_principal", "managed_identity", "workload_identity", "azure_cli"}
)


def _identity_tag(value: Any) -> str | None:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return f"identity={kind}" if isinstance(kind, str) and kind in IDENTITY_MODELS else None


IdentityConfig = Annotated[
    Annotated[UserIdentity, Tag("identity=user")]
    | Annotated[ServicePrincipalIdentity, Tag("identity=service_principal")]
    | Annotated[ManagedIdentity, Tag("identity=managed_identity")]
    | Annotated[WorkloadIdentity, Tag("identity=workload_identity")]
    | Annotated[AzureCliIdentity, Tag("identity=azure_cli")]
    | Annotated[LegacyPasswordIdentity, Tag("identity=legacy_password")],
    Discriminator(
        _identity_tag, custom_error_type="identity_kind", custom_error_message="unknown kind"
    ),
]

# Union tags that pydantic puts into error locations; config_problems drops them from key paths.
TAGGED_MODELS: dict[str, type[BaseModel]] = {
    **REF_MODELS,
    "cache=file": FileCacheConfig,
    "cache=key_vault": KeyVaultCacheConfig,
    **{f"identity={kind}": model for kind, model in IDENTITY_MODELS.items()},
    **CHANNEL_TAGS,
}


# --- the whole file ----------------------------------------------------------------------------


class Config(StrictModel):
    """A validated ``patwarden.yaml``. Build it with :func:`load_config`."""

    azure: AzureConfig = AzureConfig()
    organization: Organization | None = Field(default=None, examples=["contoso"])
    organizations: tuple[Organization, ...] | None = None
    state_dir: ConfigPath = Field(default=Path(DEFAULT_STATE_DIR), validate_default=True)
    # Where the state lives (patwarden.config.state; default: SQLite in state_dir).
    state: StateConfig = Field(default_factory=StateConfig)
    identities: dict[IdentityName, IdentityConfig] = Field(default_factory=dict)
    rotator: IdentityName = "rotator"
    auditor: IdentityName | None = None
    # Managed tokens (patwarden.config.tokens; cross-checks in patwarden.config.token_checks).
    tokens: dict[str, TokenConfig] = Field(default_factory=dict)
    rotation: RotationSettings = Field(default_factory=RotationSettings)
    # `patwarden serve` (patwarden.config.service; cross-checks in config.service_checks).
    service: ServiceConfig = Field(default_factory=ServiceConfig)
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig)
    _source: Path | None = PrivateAttr(default=None)
    _sha256: str | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        """The file this configuration was loaded from (None when built in code)."""
        return self._source

    @property
    def sha256(self) -> str | None:
        """The SHA-256 (hex) of the bytes it was loaded from (None when built in code)."""
        return self._sha256

    @property
    def orgs(self) -> tuple[str, ...]:
        """Every Azure DevOps organization this config manages."""
        if self.organizations:
            return self.organizations
        return (self.organization,) if self.organization else ()

    def identity(self, name: str) -> IdentityConfig:
        """The identity called ``name``.

        Raises:
            KeyError: no such identity (load_config has already checked every reference).
        """
        return self.identities[name]

    def cache_path(self, name: str) -> Path:
        """Where a user identity's file cache lives (``cache.path`` or ``state_dir/NAME.cache``)."""
        identity = self.identities[name]
        cache = identity.cache if isinstance(identity, UserIdentity) else None
        if isinstance(cache, FileCacheConfig) and cache.path is not None:
            return cache.path
        return self.state_dir / f"{name}.cache"

    def tenant_for(self, name: str) -> str | None:
        """The tenant an identity signs in to: its own ``tenant_id``, else ``azure.tenant_id``."""
        own = getattr(self.identities[name], "tenant_id", None)
        return own or self.azure.tenant_id
