"""The one composition root: everything a command builds from the configuration, built once.

The CLI's root group creates one :class:`AppContext` per invocation (with the clock given to
:func:`patwarden.cli.main.main`) and closes it when the command ends, so every command shares the
same credentials, rate limiters (one per identity), TLS settings, Azure DevOps clients and sinks,
and every "now" comes from the same :class:`~patwarden.clock.Clock`. Nothing is built before it
is first asked for: ``patwarden --help`` loads no config and imports no SDK, and
``patwarden config check`` builds no credential.

Module-level imports stay light (no azure, msal, httpx or pydantic): the CLI imports this module
at start-up.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from patwarden.clock import Clock, SystemClock

if TYPE_CHECKING:
    from pathlib import Path

    from patwarden.app.state_backends import Backend
    from patwarden.azdo.client import AzureDevOpsClient
    from patwarden.azdo.ratelimit import RateLimiterRegistry
    from patwarden.config.model import Config
    from patwarden.config.state import StateConfig
    from patwarden.domain.models import TokenSpec
    from patwarden.identity.credential_set import CredentialSet
    from patwarden.rotation.ports import Leadership, Sink
    from patwarden.sinks.client_pool import ClientPool
    from patwarden.sinks.wiring import SinkWiring

__all__ = ["STATE_FILE", "AppContext"]

STATE_FILE = "state.db"  # the SQLite state store's file under ``state_dir``


class AppContext:
    """Config, clock, credentials, Azure DevOps clients, state store and sinks of one run.

    Give either a loaded *config* or a *config_path* (None: ``$PATWARDEN_CONFIG``, else
    ``./patwarden.yaml``), loaded on first use. Thread-safe; :meth:`close` (or ``with``) closes
    every client and credential built, once.
    """

    def __init__(
        self,
        *,
        config: Config | None = None,
        config_path: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self._config = config
        self._config_path = config_path
        self._lock = threading.RLock()
        self._credentials: CredentialSet | None = None
        self._rate_limiters: RateLimiterRegistry | None = None
        self._wiring: SinkWiring | None = None
        self._clients: ClientPool | None = None
        self._state: Backend | None = None
        self._extra_backends: list[Backend] = []
        self._fence: Leadership | None = None
        self._closed = False

    def __repr__(self) -> str:
        loaded = "loaded" if self._config is not None else "not loaded"
        return f"AppContext(config_path={self._config_path!r}, config {loaded})"

    def __enter__(self) -> AppContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- configuration ---------------------------------------------------------------------------

    @property
    def config_path(self) -> str | None:
        """The config file to load (None: the default places)."""
        return self._config_path

    @config_path.setter
    def config_path(self, path: str | None) -> None:
        with self._lock:
            if self._config is not None and path != self._config_path:
                raise RuntimeError("the configuration is already loaded")  # a programming error
            self._config_path = path

    @property
    def config_loaded(self) -> bool:
        """Whether the configuration is loaded already (given, or asked for before)."""
        return self._config is not None

    @property
    def config(self) -> Config:
        """The validated configuration, loaded on first use.

        Raises:
            ConfigError: the file is missing or invalid (every problem, with its key path).
        """
        with self._lock:
            if self._config is None:
                from patwarden.config.model import load_config

                self._config = load_config(self._config_path)
            return self._config

    @property
    def state_path(self) -> Path:
        """The SQLite state file: ``state.path``, else ``state_dir/state.db`` (also where the
        file-based leadership lock of ``serve`` lives for the other backends)."""
        return self.config.state.path or self.config.state_dir / STATE_FILE

    @property
    def state_where(self) -> str:
        """Where the state lives, secret-free (a path, ``postgresql://…``, a blob URL)."""
        state = self.config.state
        return str(self.state_path) if state.backend == "sqlite" else state.describe()

    # --- what is built from it -------------------------------------------------------------------

    @property
    def credentials(self) -> CredentialSet:
        """Every configured identity's credential, each built on first use."""
        with self._lock:
            self._check_open()
            if self._credentials is None:
                from patwarden.identity.credential_set import CredentialSet

                self._credentials = CredentialSet(self.config, clock=self.clock)
            return self._credentials

    @property
    def rate_limiters(self) -> RateLimiterRegistry:
        """One rate limiter per (identity, resource), shared by every client and worker thread
        acting as it, so the workers pace one budget together."""
        with self._lock:
            if self._rate_limiters is None:
                from patwarden.azdo.ratelimit import RateLimiterRegistry

                # The run's clock (Unix seconds): pacing uses its differences, and Reset is read
                # against the answer's Date, so a skewed clock paces and pauses the same.
                self._rate_limiters = RateLimiterRegistry(
                    clock=lambda: self.clock.now().timestamp()
                )
            return self._rate_limiters

    @property
    def wiring(self) -> SinkWiring:
        """The Azure DevOps clients (one per identity) and the sinks of the configured tokens."""
        with self._lock:
            self._check_open()
            if self._wiring is None:
                from patwarden.sinks.wiring import SinkWiring

                self._wiring = SinkWiring(
                    config=self.config,
                    credentials=self.credentials,
                    rate_limiters=self.rate_limiters,
                    clock=self.clock,
                    clients=self.clients,
                )
            return self._wiring

    @property
    def clients(self) -> ClientPool:
        """The HTTP clients sinks share (one Key Vault client per vault and identity, with
        connections per worker thread), closed with this context."""
        with self._lock:
            self._check_open()
            if self._clients is None:
                from patwarden.sinks.client_pool import ClientPool

                self._clients = ClientPool()
            return self._clients

    def azure_devops(self, identity: str) -> AzureDevOpsClient:
        """The Azure DevOps client of *identity* (built once, with its rate limiter).

        Raises:
            ConfigError: no such identity.
        """
        return self.wiring.azure_devops(identity)

    def requests_sent(self, identity: str) -> int:
        """How many HTTP requests the Azure DevOps client of *identity* has sent so far."""
        return self.wiring.requests_sent(identity) if self._wiring is not None else 0

    def sinks(self, spec: TokenSpec) -> Sequence[Sink]:
        """The live sinks of *spec* (built once per token).

        Raises:
            SinkConfigError | SinkPluginError: an entry is invalid or its plugin cannot load.
        """
        return self.wiring.resolve(spec)

    def state_backend(self, state: StateConfig | None = None) -> Backend:
        """The configured state backend (built once), or the one *state* describes (built anew,
        closed with this context: ``state migrate`` uses it for ``--from``/``--to``).

        Raises:
            StateError: the state cannot be reached, is damaged, or is from a newer patwarden.
        """
        from patwarden.app.state_backends import build_backend

        with self._lock:
            self._check_open()
            if state is not None:
                backend = build_backend(
                    state, config=self.config, credentials=self.credentials, clock=self.clock
                )
                self._extra_backends.append(backend)
                return backend
            if self._state is None:
                self._state = build_backend(
                    self.config.state,
                    config=self.config,
                    credentials=self.credentials,
                    clock=self.clock,
                )
            return self._state

    def state_store(self) -> Any:
        """Open a store of the configured state (the caller closes it; ``with`` works); its
        timestamps come from :attr:`clock`. SQLite: the file is created (0600, in a 0700
        directory) when missing. Fenced by :meth:`leadership` once that was asked for.

        Raises:
            StateError: the state cannot be opened, is damaged, or is from a newer patwarden.
        """
        return self.state_backend().open(fence=self._fence)

    def leadership(self) -> Leadership | None:
        """The leadership of ``serve`` replicas on a shared state (PostgreSQL), built once; the
        stores opened afterwards are fenced by it. ``None``: the state has no leadership of its
        own (SQLite, Blob) and ``serve`` uses its lock file beside ``state_path``."""
        with self._lock:
            if self._fence is None:
                self._fence = self.state_backend().leadership(self.config.state.failover)
            return self._fence

    def adopt_leadership(self, leadership: Leadership | None) -> None:
        """Fence this context's stores by *leadership* (``serve`` hands it to the context it
        builds on reload, so the new stores stay fenced by the same lease)."""
        with self._lock:
            self._fence = leadership

    # --- closing ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Close every client, sink and credential built so far; later calls do nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._wiring is not None:
                self._wiring.close()
            if self._clients is not None:
                self._clients.close()
            for backend in (self._state, *self._extra_backends):
                if backend is not None:
                    backend.close()
            if self._credentials is not None:
                self._credentials.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this AppContext is closed")  # a programming error
