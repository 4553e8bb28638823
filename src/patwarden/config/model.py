"""The configuration file: its model, and :func:`load_config`, which validates it once at start-up.

Every problem is reported together, each with its key path and a fix (see
:mod:`patwarden.config.problems`). Secrets are never written into the file: wherever one is
expected, the file holds a *reference* (``{env: NAME}``, ``{file: PATH}`` or
``{key_vault: {vault_url, secret, identity}}``) that
:func:`patwarden.identity.secret_refs.resolve_secret` resolves when it is needed. The
reference for every key is ``docs/configuration.md``.
"""

from __future__ import annotations

import os
import re
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from patwarden.config.tokens import RotationSettings, TokenConfig
from patwarden.domain.durations import DurationError, parse_duration

CONFIG_ENV_VAR = "PATWARDEN_CONFIG"
DEFAULT_CONFIG_FILE = "patwarden.yaml"
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
KEY_VAULT_NAME_PATTERN = r"^[0-9A-Za-z-]{1,127}$"
IDENTITY_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
ORGANIZATION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,49}$"
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", re.I)


# --- scalar types ------------------------------------------------------------------------------


def _https_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise PydanticCustomError("https_url", "must be an https:// URL")
    if parts.query or parts.fragment:
        raise PydanticCustomError("https_url", "must not carry a query or fragment")
    return value.rstrip("/")


def _guid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise PydanticCustomError(
            "guid", "must be a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
        ) from None


def _tenant(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        if _DOMAIN.match(value):
            return value.lower()
    raise PydanticCustomError(
        "tenant", "must be a tenant GUID or a domain like contoso.onmicrosoft.com"
    )


def _duration(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("duration", "must be a duration string")
    try:
        parsed = parse_duration(value)
    except DurationError:
        raise PydanticCustomError("duration", "is not a duration") from None
    if parsed <= timedelta():
        raise PydanticCustomError("duration", "must be longer than zero")
    return parsed


def _config_path(value: Path, info: ValidationInfo) -> Path:
    expanded = value.expanduser()
    base = (info.context or {}).get("base_dir")
    if not expanded.is_absolute() and base is not None:
        expanded = Path(base) / expanded
    return expanded


HttpsUrl = Annotated[
    str, AfterValidator(_https_url), WithJsonSchema({"type": "string", "pattern": "^https://"})
]
Guid = Annotated[str, AfterValidator(_guid)]
TenantId = Annotated[str, AfterValidator(_tenant)]
Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    WithJsonSchema({"type": "string", "pattern": r"^(\d+[wdhms])+$", "examples": ["30d", "12h"]}),
]
ConfigPath = Annotated[Path, AfterValidator(_config_path)]
IdentityName = Annotated[str, Field(pattern=IDENTITY_NAME_PATTERN)]
Organization = Annotated[str, Field(pattern=ORGANIZATION_PATTERN)]


class _Model(BaseModel):
    """Frozen and strict about keys: a misspelt key is an error, never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- secret references -------------------------------------------------------------------------


class EnvRef(_Model):
    """``{env: NAME}``: the secret is the value of an environment variable."""

    env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


class FileRef(_Model):
    """``{file: PATH}``: the secret is a file's content (trailing newline removed); keep it 0600."""

    file: ConfigPath


class KeyVaultLocation(_Model):
    """Where a secret lives in Azure Key Vault, and which configured identity may read it."""

    vault_url: HttpsUrl = Field(examples=["https://ops-kv.vault.azure.net"])
    secret: str = Field(pattern=KEY_VAULT_NAME_PATTERN, examples=["patwarden-sp-secret"])
    identity: IdentityName = Field(examples=["writer"])
    version: str | None = None


class KeyVaultRef(_Model):
    """``{key_vault: {vault_url, secret, identity}}``: the secret is read from Key Vault."""

    key_vault: KeyVaultLocation


class KeyringRef(_Model):
    """``{keyring: true}``: the cache key lives in the OS keyring (created at first login)."""

    keyring: Literal[True]


_REF_MODELS: dict[str, type[_Model]] = {
    "ref=env": EnvRef,
    "ref=file": FileRef,
    "ref=key_vault": KeyVaultRef,
    "ref=keyring": KeyringRef,
}


def _ref_tag(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) == 1:
        tag = f"ref={next(iter(value))}"
        return tag if tag in _REF_MODELS else None
    for tag, model in _REF_MODELS.items():
        if isinstance(value, model):
            return tag
    return None


def _refuse_literal(value: Any) -> Any:
    if isinstance(value, str | int | float):
        # Never echo the value: it is probably the secret itself.
        raise PydanticCustomError("secret_literal", "a literal secret is not allowed here")
    return value


SecretRef = Annotated[
    Annotated[EnvRef, Tag("ref=env")]
    | Annotated[FileRef, Tag("ref=file")]
    | Annotated[KeyVaultRef, Tag("ref=key_vault")],
    Discriminator(
        _ref_tag, custom_error_type="secret_ref", custom_error_message="not a secret reference"
    ),
    BeforeValidator(_refuse_literal),
]
CacheKeyRef = Annotated[
    Annotated[EnvRef, Tag("ref=env")]
    | Annotated[FileRef, Tag("ref=file")]
    | Annotated[KeyVaultRef, Tag("ref=key_vault")]
    | Annotated[KeyringRef, Tag("ref=keyring")],
    Discriminator(
        _ref_tag, custom_error_type="cache_key_ref", custom_error_message="not a key reference"
    ),
    BeforeValidator(_refuse_literal),
]


# --- Azure endpoints ---------------------------------------------------------------------------


class AzureConfig(_Model):
    """Where Entra ID and Azure DevOps live. Defaults are public Azure; override for an emulator."""

    authority_host: HttpsUrl = PUBLIC_AUTHORITY_HOST
    azure_devops_url: HttpsUrl = PUBLIC_AZURE_DEVOPS_URL
    vssps_url: HttpsUrl = PUBLIC_VSSPS_URL
    tenant_id: TenantId | None = None
    ca_bundle: ConfigPath | None = None

    @property
    def is_well_known_authority(self) -> bool:
        """Whether MSAL can look up this authority's instance metadata (public/sovereign clouds)."""
        return (urlsplit(self.authority_host).hostname or "") in WELL_KNOWN_AUTHORITY_HOSTS

    @property
    def verify(self) -> str | bool:
        """The ``verify`` / ``connection_verify`` value for HTTP clients: a CA path, or True."""
        return str(self.ca_bundle) if self.ca_bundle else True


# --- token cache storage -----------------------------------------------------------------------


class FileCacheConfig(_Model):
    """The rotator's token cache in an encrypted file (default: ``state_dir/<identity>.cache``)."""

    kind: Literal["file"] = "file"
    path: ConfigPath | None = None
    key: CacheKeyRef | None = Field(default=None, examples=[{"env": "PATWARDEN_CACHE_KEY"}])


class KeyVaultCacheConfig(_Model):
    """The rotator's token cache as a Key Vault secret, read and written by another identity."""

    kind: Literal["key_vault"]
    vault_url: HttpsUrl = Field(examples=["https://ops-kv.vault.azure.net"])
    secret: str = Field(pattern=KEY_VAULT_NAME_PATTERN, examples=["patwarden-rotator-cache"])
    identity: IdentityName = Field(examples=["writer"])
    key: CacheKeyRef | None = None


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


class UserIdentity(_Model):
    """A dedicated Entra user, signed in once with ``patwarden login``; the only rotator kind."""

    kind: Literal["user"]
    client_id: Guid = Field(examples=["00000000-0000-0000-0000-000000000000"])
    tenant_id: TenantId | None = None
    username: str | None = None
    sign_in_frequency: Duration | None = None
    cache: CacheConfig = FileCacheConfig()


class CertificateConfig(_Model):
    """A PEM (or PKCS#12) certificate with its private key, for a service principal."""

    path: ConfigPath = Field(examples=["/etc/patwarden/writer.pem"])
    password: SecretRef | None = None
    send_certificate_chain: bool = False


class ServicePrincipalIdentity(_Model):
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


class ManagedIdentity(_Model):
    """An Azure managed identity: system-assigned, or user-assigned when ``client_id`` is set."""

    kind: Literal["managed_identity"]
    client_id: Guid | None = None


class WorkloadIdentity(_Model):
    """Workload identity federation: a projected token file exchanged for an Entra token."""

    kind: Literal["workload_identity"]
    client_id: Guid = Field(examples=["00000000-0000-0000-0000-000000000000"])
    tenant_id: TenantId | None = None
    token_file: ConfigPath = Path(DEFAULT_WIF_TOKEN_FILE)


class AzureCliIdentity(_Model):
    """Whoever is signed in to the Azure CLI (``az login``): handy on a workstation."""

    kind: Literal["azure_cli"]
    tenant_id: TenantId | None = None


class LegacyPasswordIdentity(_Model):
    """Username + password (ROPC) on an MFA-exempt account. Deprecated and insecure: opt-in only."""

    kind: Literal["legacy_password"]
    client_id: Guid = Field(examples=["00000000-0000-0000-0000-000000000000"])
    tenant_id: TenantId | None = None
    username: str = Field(examples=["svc-legacy@contoso.com"])
    password: SecretRef = Field(examples=[{"env": "PATWARDEN_LEGACY_PASSWORD"}])
    legacy_password_flow: bool = False


IDENTITY_MODELS: dict[str, type[_Model]] = {
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
    **_REF_MODELS,
    "cache=file": FileCacheConfig,
    "cache=key_vault": KeyVaultCacheConfig,
    **{f"identity={kind}": model for kind, model in IDENTITY_MODELS.items()},
}


# --- the whole file ----------------------------------------------------------------------------


class Config(_Model):
    """A validated ``patwarden.yaml``. Build it with :func:`load_config`."""

    azure: AzureConfig = AzureConfig()
    organization: Organization | None = Field(default=None, examples=["contoso"])
    organizations: tuple[Organization, ...] | None = None
    state_dir: ConfigPath = Field(default=Path(DEFAULT_STATE_DIR), validate_default=True)
    identities: dict[IdentityName, IdentityConfig] = Field(default_factory=dict)
    rotator: IdentityName = "rotator"
    auditor: IdentityName | None = None
    # Managed tokens (patwarden.config.tokens; cross-checks in patwarden.config.token_checks).
    tokens: dict[str, TokenConfig] = Field(default_factory=dict)
    rotation: RotationSettings = Field(default_factory=RotationSettings)
    _source: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        """The file this configuration was loaded from (None when built in code)."""
        return self._source

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


def resolve_config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--config`` if given, else ``$PATWARDEN_CONFIG``, else ``./patwarden.yaml``."""
    if explicit:
        return Path(explicit).expanduser()
    from_env = os.environ.get(CONFIG_ENV_VAR)
    if from_env:
        return Path(from_env).expanduser()
    return Path(DEFAULT_CONFIG_FILE)


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read, validate and return the configuration; report every problem at once.

    Relative paths inside the file resolve against the file's folder. Warns (logging) when the file
    or a referenced secret file is readable by group or others.

    Raises:
        patwarden.config.problems.InvalidConfig: the file is missing, not YAML, or has problems
            (a ConfigError: exit code 2).
    """
    from patwarden.config.loader import validate_config_file

    return validate_config_file(resolve_config_path(path))
