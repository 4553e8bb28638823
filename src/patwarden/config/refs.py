"""Scalar types and secret references of the configuration file (shared by every section).

Secrets are never written into the file: wherever one is expected, the file holds a *reference*
(``{env: NAME}``, ``{file: PATH}`` or ``{key_vault: {vault_url, secret, identity}}``) that
:func:`patwarden.identity.secret_refs.resolve_secret` resolves when it is needed. Nothing here
imports the rest of :mod:`patwarden.config`, so identity code can use these types without the
loader.
"""

from __future__ import annotations

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
    Tag,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from patwarden.domain.durations import DurationError, parse_duration

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


class StrictModel(BaseModel):
    """Frozen and strict about keys: a misspelt key is an error, never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- secret references -------------------------------------------------------------------------


class EnvRef(StrictModel):
    """``{env: NAME}``: the secret is the value of an environment variable."""

    env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


class FileRef(StrictModel):
    """``{file: PATH}``: the secret is a file's content (trailing newline removed); keep it 0600."""

    file: ConfigPath


class KeyVaultLocation(StrictModel):
    """Where a secret lives in Azure Key Vault, and which configured identity may read it."""

    vault_url: HttpsUrl = Field(examples=["https://ops-kv.vault.azure.net"])
    secret: str = Field(pattern=KEY_VAULT_NAME_PATTERN, examples=["patwarden-sp-secret"])
    identity: IdentityName = Field(examples=["writer"])
    version: str | None = None


class KeyVaultRef(StrictModel):
    """``{key_vault: {vault_url, secret, identity}}``: the secret is read from Key Vault."""

    key_vault: KeyVaultLocation


class KeyringRef(StrictModel):
    """``{keyring: true}``: the cache key lives in the OS keyring (created at first login)."""

    keyring: Literal[True]


REF_MODELS: dict[str, type[StrictModel]] = {
    "ref=env": EnvRef,
    "ref=file": FileRef,
    "ref=key_vault": KeyVaultRef,
    "ref=keyring": KeyringRef,
}


def _ref_tag(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) == 1:
        tag = f"ref={next(iter(value))}"
        return tag if tag in REF_MODELS else None
    for tag, model in REF_MODELS.items():
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
