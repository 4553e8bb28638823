"""The admin request log: one entry per emulated-service request, never a body or a header.

Entries carry the method, the path with its query string (values of credential-bearing parameters
replaced by ``REDACTED``), the status the client saw (``None`` when the connection was dropped),
who called (``request.state.identity``, set by the services), the duration and the injected fault,
if any. The log keeps the most recent :data:`MAX_ENTRIES`; sequence numbers keep growing across
``clear()`` so ``?since=`` stays valid after a reset. Admin requests are not logged.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from patwarden_emulator.context import Emulator

MAX_ENTRIES = 100_000
ADMIN_PREFIX = "/_admin"
SENSITIVE_QUERY_KEYS = frozenset(
    {
        "code",
        "token",
        "refresh_token",
        "client_secret",
        "password",
        "client_assertion",
        "device_code",
        "access_token",
        "assertion",
    }
)
# Where services and middlewares leave per-request notes for the log (``scope["state"]``).
IDENTITY_KEY = "identity"
FAULT_KEY = "patwarden.fault"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def redact_query(query: str) -> str:
    """Return *query* with the values of credential-bearing parameters replaced."""
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode(
        [(k, "REDACTED" if k.lower() in SENSITIVE_QUERY_KEYS else v) for k, v in pairs],
        safe="$/:,",
    )


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the admin API reports it."""

    seq: int
    time: str
    method: str
    path: str
    status: int | None
    identity: str | None
    duration_ms: float
    fault: dict[str, Any] | None


class RequestLog:
    """A bounded, in-memory list of recent requests."""

    def __init__(self, *, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: deque[LoggedRequest] = deque(maxlen=max_entries)
        self._seq = itertools.count(1)

    def add(
        self,
        *,
        method: str,
        path: str,
        status: int | None,
        identity: str | None,
        duration_ms: float,
        fault: dict[str, Any] | None,
    ) -> LoggedRequest:
        """Append an entry (the oldest falls off once the log is full)."""
        entry = LoggedRequest(
            seq=next(self._seq),
            time=dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            method=method,
            path=path,
            status=status,
            identity=identity,
            duration_ms=round(duration_ms, 3),
            fault=fault,
        )
        self._entries.append(entry)
        return entry

    def since(self, seq: int) -> list[LoggedRequest]:
        """Entries with a sequence number greater than *seq*, oldest first."""
        return [entry for entry in self._entries if entry.seq > seq]

    def clear(self) -> None:
        """Drop every entry (sequence numbers keep counting)."""
        self._entries.clear()


def request_log(emu: Emulator) -> RequestLog:
    """The emulator's request log (created on first use)."""
    log = emu.runtime.get("requestlog")
    if not isinstance(log, RequestLog):
        log = RequestLog()
        emu.runtime["requestlog"] = log
    return log


def as_json(entry: LoggedRequest) -> dict[str, Any]:
    """The admin API's JSON form of an entry."""
    return asdict(entry)


def reset(emu: Emulator) -> None:
    """Empty the log."""
    request_log(emu).clear()


class RequestLogMiddleware:
    """ASGI middleware recording every non-admin HTTP request in the emulator's log."""

    def __init__(self, app: ASGIApp, *, emu: Emulator) -> None:
        self.app = app
        self.log = request_log(emu)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        started = time.perf_counter()
        status: int | None = None

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        except BaseException:
            status = status or 500
            raise
        finally:
            query = redact_query(scope.get("query_string", b"").decode("latin-1"))
            identity = state.get(IDENTITY_KEY)
            self.log.add(
                method=scope["method"],
                path=scope["path"] + (f"?{query}" if query else ""),
                status=status,
                identity=None if identity is None else str(identity),
                duration_ms=(time.perf_counter() - started) * 1000,
                fault=state.get(FAULT_KEY),
            )
