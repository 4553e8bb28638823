"""Sending a request and reading its answer whole, capped in size and in time.

Both of patwarden's own HTTP clients (the Azure DevOps transport and the Key Vault client) send
through a :class:`Sender`:

- **Straight to a transport.** An ``httpx.Client`` wraps every request in URL merging, a cookie
  jar, auth and redirect handling and event hooks that these clients do not use: about a third of
  a request's CPU on the fleet benchmark (0.46 against 0.31 ms per Key Vault GET on loopback,
  docs/performance.md). The sender calls the transport itself, with the timeouts and default
  headers a client would add; redirects are never followed and no cookie is kept, as before.
- **Proxies as the environment says.** ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` and
  ``NO_PROXY`` are read as requests and ``urllib`` read them (:func:`urllib.request.getproxies`,
  :func:`urllib.request.proxy_bypass`), once per host; a proxied host gets a transport of its own
  with that proxy (one per thread, on the same TLS settings).
- **A connection pool per thread** (:class:`PerThreadTransport`). httpcore's pool assigns
  connections by scanning all of them under one lock, twice per request, and counts the idle ones
  for each: quadratic in the connections. A fleet run shares one client between its workers, so at
  100 ms of latency one pool held 20-64 connections and that scan cost ~0.7 ms of CPU per rotation;
  with httpx's default of 20 kept connections the other workers' were closed after each answer
  and TLS-handshaken again. Each thread gets its own transport (all on one SSL context), so a
  worker reuses its own one or two connections and never waits on the others'.
- **Bounded answers.** Each socket read has its own timeout, so a server that drips one byte at a
  time never trips it, and an endless body would fill memory. The answer is streamed and fails
  like a transport error (:class:`ResponseTooLarge`, :class:`ResponseTooSlow`) when it is larger
  than *max_bytes* or still arriving *deadline* seconds after it was sent: callers retry it, or
  report it, like any answer that never came.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    import ssl

__all__ = [
    "NOT_SENT",
    "RETRYABLE",
    "PerThreadTransport",
    "ResponseTooLarge",
    "ResponseTooSlow",
    "Sender",
    "read_whole",
]

# Transport errors: the request never left (no connection was made), and those worth a retry
# (a timeout or a broken connection; a TLS or protocol-version failure is not).
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
RETRYABLE = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
# Headers of the streamed answer that no longer describe the body once it is read and decoded.
_BODY_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class ResponseTooLarge(httpx.RemoteProtocolError):
    """The answer's body was larger than any real answer (an endless or hostile body)."""


class ResponseTooSlow(httpx.ReadTimeout):
    """The answer kept arriving, too slowly to finish within the deadline (a dripping server)."""


class PerThreadTransport(httpx.BaseTransport):
    """Sends each request through the calling thread's own transport (thread-safe)."""

    def __init__(self, factory: Callable[[], httpx.BaseTransport]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._local = threading.local()
        self._transports: dict[threading.Thread, httpx.BaseTransport] = {}
        self._generation = 0  # bumped by close(): a thread's older transport is not reused

    def __repr__(self) -> str:
        return f"PerThreadTransport(threads={len(self._transports)})"

    def __len__(self) -> int:
        """How many threads' transports are open."""
        with self._lock:
            return len(self._transports)

    def _mine(self) -> httpx.BaseTransport:
        mine: tuple[int, httpx.BaseTransport] | None = getattr(self._local, "transport", None)
        if mine is not None and mine[0] == self._generation:
            return mine[1]
        current = threading.current_thread()
        with self._lock:
            ended = [thread for thread in self._transports if not thread.is_alive()]
            stale = [self._transports.pop(thread) for thread in ended]
            transport = self._transports[current] = self._factory()
            self._local.transport = (self._generation, transport)
        for old in stale:
            old.close()
        return transport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send *request* through this thread's transport (built on its first request)."""
        return self._mine().handle_request(request)

    def close(self) -> None:
        """Close every thread's transport; a later request builds a new one."""
        with self._lock:
            transports = list(self._transports.values())
            self._transports.clear()
            self._generation += 1
        for transport in transports:
            transport.close()


class Sender:
    """Sends requests through *transport* (or per-thread HTTPS transports trusting *verify*) and
    returns each answer read whole. Thread-safe; close it to close the transports it built or
    was given."""

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | bool,
        timeout: httpx.Timeout,
        headers: Mapping[str, str],
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._verify = verify
        self._timeout = timeout.as_dict()
        self._headers = dict(headers)
        self._transport = transport or PerThreadTransport(self._factory(None))
        self._lock = threading.Lock()
        self._proxies: dict[tuple[str, str], str | None] = {}  # (scheme, host) -> proxy URL
        self._proxied: dict[str, httpx.BaseTransport] = {}  # proxy URL -> its transport

    def __repr__(self) -> str:
        return f"Sender(proxied={sorted(self._proxied)!r})"

    def _factory(self, proxy: str | None) -> Callable[[], httpx.BaseTransport]:
        verify = self._verify
        return lambda: httpx.HTTPTransport(verify=verify, proxy=proxy)

    def build(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Request:
        """The request a client would send: *url* with *params*, the default headers updated
        with *headers*, the timeouts."""
        return httpx.Request(
            method,
            httpx.URL(url, params=params) if params else url,
            headers={**self._headers, **(headers or {})},
            content=content,
            extensions={"timeout": self._timeout},
        )

    def send(self, request: httpx.Request, *, max_bytes: int, deadline: float) -> httpx.Response:
        """Send *request* and return its answer read whole (see :func:`read_whole`).

        Raises:
            httpx.TransportError: no (complete) answer.
        """
        return read_whole(
            self.transport_for(request.url), request, max_bytes=max_bytes, deadline=deadline
        )

    def transport_for(self, url: httpx.URL) -> httpx.BaseTransport:
        """The transport for *url*: a proxy's when the environment routes its host through one."""
        key = (url.scheme, url.host)
        if self._proxies.get(key, "") is None:  # a known direct host: no lock on the hot path
            return self._transport
        with self._lock:
            if key not in self._proxies:
                self._proxies[key] = environment_proxy(url.scheme, url.host)
            proxy = self._proxies[key]
            if proxy is None:
                return self._transport
            transport = self._proxied.get(proxy)
            if transport is None:
                transport = self._proxied[proxy] = PerThreadTransport(self._factory(proxy))
            return transport

    def close(self) -> None:
        """Close every transport (the given one too)."""
        with self._lock:
            transports = [self._transport, *self._proxied.values()]
            self._proxied.clear()
        for transport in transports:
            transport.close()


def environment_proxy(scheme: str, host: str) -> str | None:
    """The proxy URL the environment names for *scheme*://*host*, or None (none, or the host is
    in ``NO_PROXY``)."""
    proxies = urllib.request.getproxies()
    proxy = proxies.get(scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def read_whole(
    transport: httpx.BaseTransport, request: httpx.Request, *, max_bytes: int, deadline: float
) -> httpx.Response:
    """Send *request* through *transport* and return its answer with the whole body read (and
    decoded), within the bounds.

    Raises:
        httpx.TransportError: no (complete) answer, including :class:`ResponseTooLarge` and
            :class:`ResponseTooSlow`.
    """
    until = time.monotonic() + deadline
    streamed = transport.handle_request(request)
    streamed.request = request
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in streamed.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise ResponseTooLarge(
                    f"the answer was larger than {max_bytes >> 20} MiB", request=request
                )
            if time.monotonic() > until:
                raise ResponseTooSlow(
                    f"the answer was still arriving after {deadline:g} s", request=request
                )
            chunks.append(chunk)
    finally:
        streamed.close()
    kept = [(k, v) for k, v in streamed.headers.multi_items() if k.lower() not in _BODY_HEADERS]
    return httpx.Response(
        streamed.status_code,
        headers=kept,
        content=b"".join(chunks),
        request=request,
        extensions=streamed.extensions,
    )
