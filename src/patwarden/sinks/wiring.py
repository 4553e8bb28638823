"""Builds the live sinks of configured tokens: contexts, one Azure DevOps client per identity.

:class:`SinkWiring` is what the CLI and the service hand to the engine as its ``SinkResolver``:
``engine = RotationEngine(..., sinks=wiring.resolve)``. It builds each token's sinks once and
reuses them, shares one :class:`~patwarden.azdo.client.AzureDevOpsClient` per identity (with that
identity's rate limiter, counting the requests it sends) and closes every client in :meth:`close`.
Given a :class:`~patwarden.sinks.client_pool.ClientPool`, sinks share their SDK clients through it
(one ``SecretClient`` per vault and identity); its owner closes it.
The CLI builds it once per run, in :class:`~patwarden.app.context.AppContext`.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from patwarden.clock import Clock, SystemClock
from patwarden.errors import PatwardenError
from patwarden.rotation.ports import Sink
from patwarden.sinks.locks import shared_lock
from patwarden.sinks.registry import build_sink
from patwarden.sinks.spec import SinkContext

if TYPE_CHECKING:
    from patwarden.azdo.client import AzureDevOpsClient
    from patwarden.azdo.counting import CountingTransport
    from patwarden.azdo.ratelimit import RateLimiterRegistry
    from patwarden.config.model import Config
    from patwarden.domain.models import SinkEntry, TokenSpec
    from patwarden.identity.secret_refs import CredentialProvider
    from patwarden.sinks.client_pool import ClientPool

_LOG = logging.getLogger(__name__)


SINK_LOCKS_DIR = "sink.locks"  # in state_dir: locks of writes several tokens share


class SinkWiring:
    """Builds, caches and closes the sinks of the tokens of one configuration (thread-safe)."""

    def __init__(
        self,
        *,
        config: Config,
        credentials: CredentialProvider,
        rate_limiters: RateLimiterRegistry | None = None,
        clock: Clock | None = None,
        clients: ClientPool | None = None,
    ) -> None:
        self._config = config
        self._clients_pool = clients
        self._credentials = credentials
        self._rate_limiters = rate_limiters
        self._clock: Clock = clock or SystemClock()
        self._clients: dict[str, AzureDevOpsClient] = {}
        self._counters: dict[str, CountingTransport] = {}
        self._sinks: dict[str, tuple[Sink, ...]] = {}
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"SinkWiring(tokens={sorted(self._sinks)!r}, identities={sorted(self._clients)!r})"

    @property
    def ca_bundle(self) -> str | None:
        """The CA bundle every sink's HTTPS client trusts besides the system store."""
        bundle = self._config.azure.ca_bundle
        return str(bundle) if bundle else None

    def azure_devops(self, identity: str) -> AzureDevOpsClient:
        """The Azure DevOps client of *identity*, built on first use.

        Raises:
            ConfigError: no such identity (from the credential provider).
        """
        import httpx

        from patwarden.azdo.client import AzureDevOpsClient
        from patwarden.azdo.counting import CountingTransport
        from patwarden.azdo.transport import ServiceUrls
        from patwarden.http_answers import PerThreadTransport
        from patwarden.tls import ssl_context

        with self._lock:
            client = self._clients.get(identity)
            if client is None:
                azure = self._config.azure
                limiter = self._rate_limiters.get(identity) if self._rate_limiters else None
                # The counter wraps the real transport, so it must carry the TLS settings itself;
                # one pool per worker thread (see PerThreadTransport), all on one SSL context.
                verify = ssl_context(self.ca_bundle)
                counter = CountingTransport(
                    PerThreadTransport(lambda: httpx.HTTPTransport(verify=verify))
                )
                client = AzureDevOpsClient(
                    credential=self._credentials.get(identity),
                    urls=ServiceUrls(
                        azure_devops_url=azure.azure_devops_url, vssps_url=azure.vssps_url
                    ),
                    ca_bundle=self.ca_bundle,
                    rate_limiter=limiter,
                    http_transport=counter,
                )
                self._clients[identity] = client
                self._counters[identity] = counter
            return client

    def requests_sent(self, identity: str) -> int:
        """How many HTTP requests the Azure DevOps client of *identity* has sent so far."""
        with self._lock:
            counter = self._counters.get(identity)
            return counter.requests if counter else 0

    def context(self, organization: str | None) -> SinkContext:
        """The context sinks of a token in *organization* are built with."""
        return SinkContext(
            credential=self._credentials.get,
            azure_devops=self.azure_devops,
            organization=organization,
            ca_bundle=self.ca_bundle,
            clock=self._clock,
            lock=functools.partial(shared_lock, self._config.state_dir / SINK_LOCKS_DIR),
            vault_scope=self._config.azure.vault_scope,
            clients=self._clients_pool,
        )

    def build(
        self,
        *,
        token_name: str,
        organization: str | None,
        entries: Sequence[SinkEntry | Mapping[str, Any]],
    ) -> tuple[Sink, ...]:
        """Build (once) and return the sinks of *token_name* from its validated specs (or entries).

        Raises:
            SinkConfigError: an entry is invalid (its message names ``tokens.<name>.sinks[i]``).
            SinkPluginError: a sink plugin could not be loaded.
        """
        with self._lock:
            built = self._sinks.get(token_name)
            if built is None:
                context = self.context(organization)
                built = tuple(
                    build_sink(entry, context, where=_where(token_name, i))
                    for i, entry in enumerate(entries)
                )
                self._sinks[token_name] = built
            return built

    def resolve(self, spec: TokenSpec) -> Sequence[Sink]:
        """The engine's ``SinkResolver``: the sinks of *spec* (built from its validated specs).

        Raises:
            SinkConfigError | SinkPluginError: as :meth:`build`.
        """
        return self.build(token_name=spec.name, organization=spec.organization, entries=spec.sinks)

    def warmers(self, specs: Sequence[TokenSpec]) -> list[Callable[[], None]]:
        """Build the sinks of *specs* and return the ``warm()`` method of each that has one (the
        Key Vault sink: it gets its token, which its client keeps). A run calls them in a
        background thread (:func:`warming`) while it signs the rotators in and lists their PATs,
        so the first sink request does not wait for its own sign-in round trips.

        The sinks are built here, on the calling thread, so that the modules they need are
        imported here: two threads importing the same packages at once (azure-core's modules
        import each other) can deadlock. A spec whose sinks cannot be built is skipped (its
        token's run reports why).
        """
        found: list[Callable[[], None]] = []
        for spec in specs:
            try:
                sinks = self.resolve(spec)
            except PatwardenError:
                continue
            for sink in sinks:
                warm = getattr(sink, "warm", None)
                if callable(warm):
                    found.append(warm)
        return found

    def close(self) -> None:
        """Close every client built so far (sinks with a ``close`` method, then Azure DevOps)."""
        with self._lock:
            for sinks in self._sinks.values():
                for sink in sinks:
                    close = getattr(sink, "close", None)
                    if callable(close):
                        close()
            for client in self._clients.values():
                client.close()
            self._sinks.clear()
            self._clients.clear()
            self._counters.clear()

    def __enter__(self) -> SinkWiring:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _where(token_name: str, index: int) -> str:
    return f"tokens.{token_name}.sinks[{index}]"


@contextmanager
def warming(warmers: Sequence[Callable[[], None]]) -> Iterator[None]:
    """Call *warmers* (:meth:`SinkWiring.warmers`) in a background thread while the block runs:
    the sinks' credentials (a Key Vault token per identity) come while the run signs its
    rotators in and lists their PATs, two round trips off the first token's path.

    The block does not end before that thread does: one still inside OpenSSL (loading a CA file,
    a handshake) when the process exits crashes it, as OpenSSL's exit handler frees what the
    thread is using (a `rotate` refused for sign-in died of SIGSEGV), and closing the sinks'
    clients under it would break its request.
    """
    if not warmers:
        yield
        return
    thread = threading.Thread(
        target=warm, args=(warmers,), name="patwarden-warm-sinks", daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        thread.join()


def warm(warmers: Sequence[Callable[[], None]]) -> None:
    """Call each of *warmers* (:meth:`SinkWiring.warmers`), best effort: a failure is logged at
    debug level, and the sink's first real request reports it."""
    for warmer in warmers:
        try:
            warmer()
        except Exception as exc:  # best effort: the run reports it per token
            _LOG.debug("getting a sink's credentials ahead: %s", type(exc).__name__)
