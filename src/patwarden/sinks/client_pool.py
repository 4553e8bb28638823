"""One HTTP client per target, shared by every sink and worker thread of a run, closed once.

A client costs a connection pool and a TLS handshake per connection; a fleet of a thousand tokens
writing into one vault needs one client, not a thousand (each holding its own connections for the
whole run). Sinks ask :meth:`ClientPool.get` with a key naming what the client is for
(``("key_vault", vault_url, identity)``) and a function building it; the pool builds it once. The
Key Vault client gives every worker thread its own connections (``PerThreadTransport``), so a
worker keeps its connection instead of opening a new one per request.

:class:`~patwarden.app.context.AppContext` owns the run's pool (through its sink wiring) and
closes it, and every client in it, when the command ends.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

__all__ = ["ClientPool"]

_Client = TypeVar("_Client")


class ClientPool:
    """Clients built once per key; thread-safe; :meth:`close` closes every one of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key_locks: dict[Hashable, threading.Lock] = {}
        self._clients: dict[Hashable, Any] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"ClientPool(clients={len(self._clients)})"

    def get(self, key: Hashable, build: Callable[[], _Client]) -> _Client:
        """The client of *key*, built by *build* the first time (one build even when threads ask
        at once; a build that raises is not kept, so the next call tries again).

        Raises:
            RuntimeError: the pool is closed (a programming error).
            Exception: whatever *build* raises.
        """
        with self._lock:
            self._check_open()
            if key in self._clients:
                client: _Client = self._clients[key]
                return client
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._clients:
                    client = self._clients[key]
                    return client
            client = build()
            with self._lock:
                if self._closed:  # closed while building: do not leak the new client
                    _close(client)
                    self._check_open()
                self._clients[key] = client
            return client

    def __len__(self) -> int:
        with self._lock:
            return len(self._clients)

    def close(self) -> None:
        """Close every client built so far (a client's ``close`` error does not stop the others);
        later calls do nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            clients = list(self._clients.values())
            self._clients.clear()
        for client in clients:
            _close(client)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this ClientPool is closed")


def _close(client: object) -> None:
    close = getattr(client, "close", None)
    if callable(close):
        with contextlib.suppress(Exception):  # best effort: the run is ending
            close()
