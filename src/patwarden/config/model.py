"""The configuration file: its model, and :func:`load_config`, which validates it once at start-up.

Every problem is reported together, each with its key path and a fix (see
:mod:`patwarden.config.problems`). Secrets are never written into the file: wherever one is
expected, the file holds a *reference* (``{env: NAME}``, ``{file: PATH}`` or
``{key_vault: {vault_url, secret, identity}}``) that
:func:`patwarden.identity.secret_refs.resolve_secret` resolves when it is needed. The
reference for every key is ``docs/configuration.md``.

This module is the config package's front door: the models are defined in
:mod:`patwarden.config.refs` (scalar types, secret references) and :mod:`patwarden.config.schema`
(Azure, caches, identities, :class:`Config`) and re-exported here; the reading is in
:mod:`patwarden.config.loader`, which imports only those, so nothing imports back into this module.
"""

from __future__ import annotations

import os

from patwarden.config.loader import validate_config_file
from patwarden.config.location import CONFIG_ENV_VAR, DEFAULT_CONFIG_FILE, resolve_config_path
from patwarden.config.refs import (
    IDENTITY_NAME_PATTERN,
    KEY_VAULT_NAME_PATTERN,
    ORGANIZATION_PATTERN,
    CacheKeyRef,
    ConfigPath,
    Duration,
    EnvRef,
    FileRef,
    Guid,
    HttpsUrl,
    IdentityName,
    KeyringRef,
    KeyVaultLocation,
    KeyVaultRef,
    Organization,
    SecretRef,
    TenantId,
)
from patwarden.config.schema import (
    APP_IDENTITY_KINDS,
    DEFAULT_STATE_DIR,
    DEFAULT_WIF_TOKEN_FILE,
    IDENTITY_MODELS,
    PUBLIC_AUTHORITY_HOST,
    PUBLIC_AZURE_DEVOPS_URL,
    PUBLIC_VSSPS_URL,
    TAGGED_MODELS,
    WELL_KNOWN_AUTHORITY_HOSTS,
    AzureCliIdentity,
    AzureConfig,
    CacheConfig,
    CertificateConfig,
    Config,
    FileCacheConfig,
    IdentityConfig,
    KeyVaultCacheConfig,
    LegacyPasswordIdentity,
    ManagedIdentity,
    ServicePrincipalIdentity,
    UserIdentity,
    WorkloadIdentity,
)

__all__ = [
    "APP_IDENTITY_KINDS",
    "CONFIG_ENV_VAR",
    "DEFAULT_CONFIG_FILE",
    "DEFAULT_STATE_DIR",
    "DEFAULT_WIF_TOKEN_FILE",
    "IDENTITY_MODELS",
    "IDENTITY_NAME_PATTERN",
    "KEY_VAULT_NAME_PATTERN",
    "ORGANIZATION_PATTERN",
    "PUBLIC_AUTHORITY_HOST",
    "PUBLIC_AZURE_DEVOPS_URL",
    "PUBLIC_VSSPS_URL",
    "TAGGED_MODELS",
    "WELL_KNOWN_AUTHORITY_HOSTS",
    "AzureCliIdentity",
    "AzureConfig",
    "CacheConfig",
    "CacheKeyRef",
    "CertificateConfig",
    "Config",
    "ConfigPath",
    "Duration",
    "EnvRef",
    "FileCacheConfig",
    "FileRef",
    "Guid",
    "HttpsUrl",
    "IdentityConfig",
    "IdentityName",
    "KeyVaultCacheConfig",
    "KeyVaultLocation",
    "KeyVaultRef",
    "KeyringRef",
    "LegacyPasswordIdentity",
    "ManagedIdentity",
    "Organization",
    "SecretRef",
    "ServicePrincipalIdentity",
    "TenantId",
    "UserIdentity",
    "WorkloadIdentity",
    "load_config",
    "resolve_config_path",
]


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read, validate and return the configuration; report every problem at once.

    Relative paths inside the file resolve against the file's folder. Warns (logging) when the file
    or a referenced secret file is readable by group or others.

    Raises:
        patwarden.config.problems.InvalidConfig: the file is missing, not YAML, or has problems
            (a ConfigError: exit code 2).
    """
    return validate_config_file(resolve_config_path(path))
