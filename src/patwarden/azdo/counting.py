"""An httpx transport that counts the requests it sends, for "N requests" in command summaries."""

from __future__ import annotations

import threading

import httpx

__all__ = ["CountingTransport"]


class CountingTransport(httpx.BaseTransport):
    """An httpx transport that counts the requests it sends (thread-safe)."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self.requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Count and send *request*."""
        with self._lock:
            self.requests += 1
        return self._inner.handle_request(request)

    def close(self) -> None:
        """Close the wrapped transport."""
        self._inner.close()
