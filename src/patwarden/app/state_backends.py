"""Build the configured state backend (``state:``, docs/state.md) for the composition root.

:class:`~patwarden.app.context.AppContext` calls :func:`build_backend` once per configuration and
asks the result for stores; the one other place that builds a backend is ``status`` reading its
snapshot of the config (:mod:`patwarden.app.snapshot`), which builds a :class:`SqliteBackend` from
the path it kept. SQLite opens a new store (its own
connection) per call; PostgreSQL and Azure Blob share one pool / one blob client and lease per
backend, and their stores are thin views over it.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from patwarden.errors import ConfigError

if TYPE_CHECKING:
    from patwarden.clock import Clock
    from patwarden.config.model import Config
    from patwarden.config.state import StateConfig
    from patwarden.identity.credential_set import CredentialSet
    from patwarden.rotation.ports import Leadership
    from patwarden.state.dump import StateDump

__all__ = ["STATE_FILE", "Backend", "OpenStore", "SqliteBackend", "build_backend"]

STATE_FILE = "state.db"  # the SQLite state's file under ``state_dir``
STORAGE_SCOPE = "https://storage.azure.com/.default"


class OpenStore(Protocol):
    """A :class:`~patwarden.rotation.ports.StateStore` the caller closes (``with`` works)."""

    path: Any

    def close(self) -> None: ...
    def __enter__(self) -> Any: ...
    def __exit__(self, *exc: object) -> None: ...


class Backend(Protocol):
    """One configured state: opens stores, says where it is, exports and imports whole states."""

    where: str

    def open(self, *, fence: Leadership | None = None) -> Any:
        """A new store (the caller closes it)."""
        ...

    def exists(self) -> bool:
        """Whether the state has been created (SQLite: the file is there)."""
        ...

    def export_dump(self) -> StateDump: ...
    def import_dump(self, dump: StateDump) -> None: ...
    def leadership(self, failover: timedelta) -> Leadership | None: ...
    def close(self) -> None: ...


class SqliteBackend:
    """The SQLite state file at *path* (``status`` opens it from its snapshot of the config)."""

    def __init__(self, path: Path, clock: Clock) -> None:
        self.path, self._clock = path, clock
        self.where = str(path)

    def open(self, *, fence: Leadership | None = None) -> Any:
        from patwarden.state.sqlite import SqliteStateStore

        return SqliteStateStore(path=self.path, now=self._clock.now)

    def exists(self) -> bool:
        return self.path.exists()

    def export_dump(self) -> StateDump:
        from patwarden.state.dump import read_sqlite

        return read_sqlite(self.path, open_store=self.open)

    def import_dump(self, dump: StateDump) -> None:
        raise ConfigError(
            "patwarden state migrate copies into postgresql:// or azblob:// states only.",
            hint="Keep the SQLite file as it is, or migrate it to PostgreSQL or Azure Blob.",
        )

    def leadership(self, failover: timedelta) -> Leadership | None:
        return None  # serve's file lock beside the state file (patwarden.service.leadership)

    def close(self) -> None:
        pass


class _Shared:
    """PostgreSQL or Azure Blob: one backend object, stores are views over it."""

    def __init__(self, backend: Any, where: str, *, postgresql: bool) -> None:
        self._backend = backend
        self.where = where
        self._postgresql = postgresql

    def open(self, *, fence: Leadership | None = None) -> Any:
        if self._postgresql:
            return self._backend.store(fence=fence)
        return self._backend.store()

    def exists(self) -> bool:
        return True

    def export_dump(self) -> StateDump:
        dump: StateDump = self.open().export_dump()
        return dump

    def import_dump(self, dump: StateDump) -> None:
        self.open().import_dump(dump)

    def leadership(self, failover: timedelta) -> Leadership | None:
        if not self._postgresql:
            return None
        from patwarden.state.pg_leader import PostgresLeadership

        return PostgresLeadership(self._backend, failover=failover)

    def close(self) -> None:
        self._backend.close()


def build_backend(
    state: StateConfig, *, config: Config, credentials: CredentialSet, clock: Clock
) -> Backend:
    """Open the state *state* describes (PostgreSQL: connect and migrate; Blob: check the blob).

    Raises:
        StateError: the state cannot be reached, is damaged, or is from a newer patwarden.
        ConfigError: a secret reference or the identity cannot be resolved.
    """
    if state.backend == "sqlite":
        return SqliteBackend(state.path or config.state_dir / STATE_FILE, clock)
    if state.backend == "postgresql":
        from patwarden.state.postgres import PostgresBackend

        password = None
        if state.password is not None:
            from patwarden.identity.secret_refs import resolve_secret

            password = resolve_secret(state.password, credentials=credentials, azure=config.azure)
        backend = PostgresBackend(
            url=str(state.url), password=password, pool_size=state.pool_size, now=clock.now
        )
        return _Shared(backend, backend.where, postgresql=True)
    from patwarden.state.azblob import AzureBlobBackend

    client = _blob_client(state, config=config, credentials=credentials)
    blob = AzureBlobBackend(client=client, lease_duration=state.lease_duration, now=clock.now)
    return _Shared(blob, blob.where, postgresql=False)


def _blob_client(state: StateConfig, *, config: Config, credentials: CredentialSet) -> Any:
    from azure.storage.blob import BlobClient

    credential: Any
    if state.account_key is not None:
        from azure.core.credentials import AzureNamedKeyCredential

        from patwarden.identity.secret_refs import resolve_secret

        key = resolve_secret(state.account_key, credentials=credentials, azure=config.azure)
        credential = AzureNamedKeyCredential(_account_name(str(state.account_url)), key.reveal())
    else:
        credential = credentials.get(str(state.identity))
        _sign_in(credential, str(state.identity), state.describe())
    return BlobClient(
        str(state.account_url),
        container_name=str(state.container),
        blob_name=state.blob,
        credential=credential,
        connection_verify=config.azure.verify,
        # Azure Storage's default backoff (15 s, x3) would hold a failing run for minutes.
        retry_total=3,
        initial_backoff=1,
        increment_base=2,
    )


def _sign_in(credential: Any, identity: str, where: str) -> None:
    """Get the writer's Storage token up front: a sign-in failure is one clear error, not the
    Storage client's retries. The client reuses the cached token.

    Raises:
        StateError: the identity could not get a token for Azure Storage.
    """
    from azure.core.exceptions import AzureError

    from patwarden.errors import PatwardenError, StateError

    try:
        credential.get_token(STORAGE_SCOPE)
    except PatwardenError:
        raise
    except AzureError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StateError(
            f"The state identity {identity!r} could not sign in to Azure Storage for the Blob "
            f"state {where}: {first}",
            hint=f"Check the credentials of identity {identity!r} (`patwarden doctor`).",
        ) from None


def _account_name(account_url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(account_url)
    host = parts.hostname or ""
    path = parts.path.strip("/")
    return path.split("/")[0] if path else host.split(".")[0]
