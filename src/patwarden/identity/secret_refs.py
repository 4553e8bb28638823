"""Resolve a secret reference from the config (``{env}``, ``{file}``, ``{key_vault}``) to a value.

The value comes back wrapped in :class:`~patwarden.secret.Secret`; messages name the reference
(variable, path, vault + secret name), never the value.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Protocol

from patwarden.config.permissions import warn_if_readable_by_others
from patwarden.errors import DOCS, ConfigError
from patwarden.secret import Secret

if TYPE_CHECKING:
    from pathlib import Path

    from azure.core.credentials import TokenCredential

    from patwarden.config.refs import EnvRef, FileRef, KeyVaultRef
    from patwarden.config.schema import AzureConfig

REFS_DOCS = f"{DOCS}/configuration.md#secret-references"


class CredentialProvider(Protocol):
    """Anything that hands out a configured identity's credential by name (a CredentialSet)."""

    def get(self, name: str) -> TokenCredential:
        """The credential of identity ``name``."""
        ...


class SecretUnavailable(ConfigError):
    """A referenced secret is not there (unset variable, missing file, absent Key Vault secret)."""


def describe_ref(ref: EnvRef | FileRef | KeyVaultRef) -> str:
    """A human description of where a reference points (safe to log)."""
    from patwarden.config.refs import EnvRef, FileRef

    if isinstance(ref, EnvRef):
        return describe_env(ref.env)
    if isinstance(ref, FileRef):
        return describe_file(ref.file)
    return f"Key Vault secret {ref.key_vault.secret!r} in {ref.key_vault.vault_url}"


def describe_env(name: str) -> str:
    """How messages name an ``{env: NAME}`` secret."""
    return f"environment variable {name}"


def describe_file(path: Path) -> str:
    """How messages name a ``{file: PATH}`` secret."""
    return f"file {path}"


def resolve_secret(
    ref: EnvRef | FileRef | KeyVaultRef,
    *,
    credentials: CredentialProvider | None,
    azure: AzureConfig,
) -> Secret:
    """Fetch the secret ``ref`` points to.

    ``credentials`` is needed only for ``key_vault`` references (the reference names the identity
    that reads the vault). A file's trailing newline is dropped; a file readable by group or others
    is used but logged as a warning.

    Raises:
        SecretUnavailable: the variable is unset/empty, the file is missing/empty, or the Key Vault
            secret does not exist or is empty.
        patwarden.errors.AuthError: Key Vault refused the read or could not be reached.
    """
    from patwarden.config.refs import EnvRef, FileRef

    if isinstance(ref, EnvRef):
        return env_secret(ref.env)
    if isinstance(ref, FileRef):
        return file_secret(ref.file)
    return _read_key_vault(ref, credentials=credentials, azure=azure)


def env_secret(name: str) -> Secret:
    """The value of environment variable *name* (``{env: NAME}``).

    Raises:
        SecretUnavailable: the variable is unset or empty.
    """
    value = os.environ.get(name, "")
    if not value:
        raise SecretUnavailable(
            f"environment variable {name} is not set (or empty)",
            hint=f"export {name} in the environment patwarden runs in",
            docs=REFS_DOCS,
        )
    return Secret(value)


def file_secret(path: Path) -> Secret:
    """The content of *path* without its trailing newline (``{file: PATH}``); a file others may
    read is used, with a warning.

    Raises:
        SecretUnavailable: the file is missing, unreadable or empty.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SecretUnavailable(
            f"secret file {path} does not exist",
            hint="create it (mode 0600) or fix the path",
            docs=REFS_DOCS,
        ) from None
    except OSError as err:
        raise SecretUnavailable(
            f"cannot read secret file {path}: {err.strerror}",
            hint="make it readable by the user patwarden runs as (and by nobody else: chmod 600)",
            docs=REFS_DOCS,
        ) from None
    warn_if_readable_by_others(path, what="secret file")
    value = text.removesuffix("\n").removesuffix("\r")
    if not value:
        raise SecretUnavailable(
            f"secret file {path} is empty", hint="write the secret into it", docs=REFS_DOCS
        )
    return Secret(value)


def _read_key_vault(
    ref: KeyVaultRef, *, credentials: CredentialProvider | None, azure: AzureConfig
) -> Secret:
    from azure.core.exceptions import AzureError, ResourceNotFoundError

    from patwarden.identity.keyvault import key_vault_failure, secret_client

    location = ref.key_vault
    if credentials is None:
        raise ConfigError(
            f"{describe_ref(ref)} needs identity {location.identity!r} to read it, but no "
            "identities are available here",
            hint="use an {env: ...} or {file: ...} reference in this place",
        )
    client = secret_client(
        vault_url=location.vault_url, credential=credentials.get(location.identity), azure=azure
    )
    try:
        found = client.get_secret(location.secret, location.version)
    except ResourceNotFoundError:
        raise SecretUnavailable(
            f"{describe_ref(ref)} does not exist",
            hint="create the secret, or fix vault_url / secret / version",
            docs=REFS_DOCS,
        ) from None
    except AzureError as err:
        raise key_vault_failure(
            err,
            action="read",
            vault_url=location.vault_url,
            secret=location.secret,
            identity=location.identity,
        ) from None
    finally:
        client.close()
    if not found.value:
        raise SecretUnavailable(
            f"{describe_ref(ref)} is empty", hint="store the secret's value in it", docs=REFS_DOCS
        )
    return Secret(found.value)
