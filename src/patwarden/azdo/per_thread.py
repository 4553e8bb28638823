"""An httpx transport with one connection pool per thread: no pool shared by every worker.

httpcore's pool assigns connections by scanning all of them, under one lock, twice per request
(when it is sent and when its answer is closed), and for each one counts the idle ones again:
quadratic in the connections. A fleet run shares one Azure DevOps client between its workers, so
at 100 ms of latency the pool held ~20-64 connections and that scan cost ~0.7 ms of CPU per
rotation (more the more connections it keeps); with its default of 20 kept connections, the other
workers' connections were closed after each answer and TLS-handshaken again.

:class:`PerThreadTransport` gives each thread its own transport (built by a factory, e.g. an
``httpx.HTTPTransport`` sharing one SSL context): a worker's requests reuse its own one or two
connections and never wait on the others'. Transports of threads that have ended are closed when
the next thread starts using it; :meth:`PerThreadTransport.close` closes every one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx

__all__ = ["PerThreadTransport"]


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
