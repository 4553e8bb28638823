"""Azure DevOps rate limiting (contract §5), off by default.

``PUT /_admin/rate-limit {"enabled", "limit", "window_seconds", "delay_threshold"?, "delay_ms"?}``
gives every identity a budget of ``limit`` Azure DevOps requests (one TSTU each) per sliding
window. While it is on, every Azure DevOps response carries ``X-RateLimit-Resource``, ``-Limit``,
``-Remaining`` and ``-Reset`` with the meanings Microsoft documents
(https://learn.microsoft.com/azure/devops/integrate/concepts/rate-limits, "HTTP response
headers"): Limit and Remaining count the TSTUs allowed and left *before delays are imposed*
(``delay_threshold`` when set, else ``limit``), and Reset is the Unix time at which usage would be
back to 0 if all consumption stopped now, on the service's clock. On the real service Reset and
the ``Date`` header come from one server clock, so here Reset follows the clock uvicorn dates
every answer by, the wall clock, not the business clock (:mod:`patwarden_emulator.clock`), which
only dates PAT data and which tests move by years.
Past ``delay_threshold`` requests in the window, each request is delayed ``delay_ms`` and also
carries ``X-RateLimit-Delay`` and ``Retry-After`` (``Remaining`` is then 0, as the service
reports once it delays). Past ``limit``, requests are refused with 429, ``Retry-After`` (until the
oldest counted request leaves the window) and the ``TF400733`` VSS error, without reaching the
service. ``GET`` returns the settings. The window itself is measured on the monotonic clock, so
a stepped wall clock does not empty or overfill it.

The identity is derived from the ``Authorization`` header without verifying it (a bearer token's
``oid``/``appid``, or a PAT's owner), and is never logged.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from patwarden_emulator.context import Emulator
from patwarden_emulator.devops.state import devops_state
from patwarden_emulator.requestlog import ASGIApp, Message, Receive, Scope, Send
from patwarden_emulator.service_errors import service_of, throttle_error

RESOURCE = "Core"


@dataclass(frozen=True)
class RateLimitSettings:
    """The admin-set budget."""

    enabled: bool = False
    limit: int = 200
    window_seconds: float = 300.0
    delay_threshold: int | None = None
    delay_ms: int = 200


@dataclass(frozen=True)
class Verdict:
    """The limiter's answer for one request."""

    blocked: bool
    remaining: int
    reset_at: int
    retry_after: float
    delay_seconds: float = 0.0


def _no_owner(pat: str) -> str | None:
    return None


def identity_key(
    authorization: str | None, *, pat_owner: Callable[[str], str | None] = _no_owner
) -> str:
    """A stable per-caller key from an ``Authorization`` header, without verifying it.

    Bearer tokens count against their ``oid`` (or ``appid``); PATs against their owner's object
    id when *pat_owner* knows it, else against a digest of the PAT (never the PAT itself).
    """
    if not authorization or " " not in authorization:
        return "anonymous"
    scheme, _, credentials = authorization.partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer":
        try:
            payload = credentials.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            subject = claims.get("oid") or claims.get("appid") or claims.get("sub")
            if isinstance(subject, str) and subject:
                return f"oid:{subject}"
        except (IndexError, ValueError, binascii.Error, AttributeError):
            pass
    if scheme.lower() == "basic":
        with contextlib.suppress(ValueError, binascii.Error):
            credentials = base64.b64decode(credentials).decode().partition(":")[2]
        owner = pat_owner(credentials)
        if owner:
            return f"oid:{owner}"
    return "digest:" + hashlib.sha256(credentials.encode()).hexdigest()[:24]


@dataclass
class RateLimiter:
    """Sliding-window request counts per identity."""

    settings: RateLimitSettings = field(default_factory=RateLimitSettings)
    windows: dict[str, deque[float]] = field(default_factory=dict)

    def configure(self, settings: RateLimitSettings) -> None:
        """Replace the settings and forget past usage."""
        self.settings = settings
        self.windows.clear()

    def check(self, key: str, *, now: float, server_now: float | None = None) -> Verdict:
        """Count one request of *key* (unless it is blocked) and say what to do with it.

        *now* measures the window (monotonic seconds); *server_now* is the same instant on the
        service's clock (Unix seconds, default *now*), which ``reset_at`` is expressed in.
        """
        s = self.settings
        shift = (now if server_now is None else server_now) - now
        window = self.windows.setdefault(key, deque())
        while window and window[0] <= now - s.window_seconds:
            window.popleft()
        if len(window) >= s.limit:
            return Verdict(
                blocked=True,
                remaining=0,
                reset_at=math.ceil(window[-1] + s.window_seconds + shift),
                retry_after=window[0] + s.window_seconds - now,
            )
        window.append(now)
        used = len(window)
        delayed = s.delay_threshold is not None and used > s.delay_threshold
        return Verdict(
            blocked=False,
            remaining=0 if delayed else max(0, advertised_limit(s) - used),
            reset_at=math.ceil(now + s.window_seconds + shift),
            retry_after=window[0] + s.window_seconds - now if delayed else 0.0,
            delay_seconds=s.delay_ms / 1000 if delayed else 0.0,
        )


def advertised_limit(settings: RateLimitSettings) -> int:
    """``X-RateLimit-Limit``: the TSTUs allowed before delays are imposed (Microsoft's meaning)."""
    threshold = settings.delay_threshold
    return settings.limit if threshold is None else min(threshold, settings.limit)


def limiter_of(emu: Emulator) -> RateLimiter:
    """The emulator's rate limiter (created, disabled, on first use)."""
    limiter = emu.runtime.get("ratelimit")
    if not isinstance(limiter, RateLimiter):
        limiter = RateLimiter()
        emu.runtime["ratelimit"] = limiter
    return limiter


def reset(emu: Emulator) -> None:
    """Rate limiting off, usage forgotten."""
    limiter_of(emu).configure(RateLimitSettings())


class RateLimitMiddleware:
    """ASGI middleware enforcing the budget on Azure DevOps routes."""

    def __init__(self, app: ASGIApp, *, emu: Emulator) -> None:
        self.app = app
        self.limiter = limiter_of(emu)
        self.devops = devops_state(emu)

    def _pat_owner(self, pat: str) -> str | None:
        record = self.devops.pat_by_value(pat)
        return None if record is None else record.user_oid

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = self.limiter.settings
        if scope["type"] != "http" or not settings.enabled or service_of(scope["path"]) != "devops":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        raw = headers.get(b"authorization")
        key = identity_key(
            None if raw is None else raw.decode("latin-1"), pat_owner=self._pat_owner
        )
        verdict = self.limiter.check(key, now=time.monotonic(), server_now=time.time())
        if verdict.blocked:
            extra, body = throttle_error(
                path=scope["path"],
                retry_after=verdict.retry_after,
                limit=advertised_limit(settings),
                resource=RESOURCE,
            )
            extra = [(k, v) for k, v in extra if k != b"x-ratelimit-reset"]
            extra.append((b"x-ratelimit-reset", str(verdict.reset_at).encode()))
            await send({"type": "http.response.start", "status": 429, "headers": extra})
            await send({"type": "http.response.body", "body": body, "more_body": False})
            return
        rate_headers = [
            (b"x-ratelimit-resource", RESOURCE.encode()),
            (b"x-ratelimit-limit", str(advertised_limit(settings)).encode()),
            (b"x-ratelimit-remaining", str(verdict.remaining).encode()),
            (b"x-ratelimit-reset", str(verdict.reset_at).encode()),
        ]
        if verdict.delay_seconds:
            await asyncio.sleep(verdict.delay_seconds)
            rate_headers += [
                (b"x-ratelimit-delay", f"{verdict.delay_seconds:.3f}".encode()),
                (b"retry-after", str(max(1, math.ceil(verdict.retry_after))).encode()),
            ]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", []), *rate_headers]
            await send(message)

        await self.app(scope, receive, with_headers)


def _settings(body: Any, current: RateLimitSettings) -> RateLimitSettings:
    if not isinstance(body, dict):
        raise ValueError("The body must be a JSON object.")
    unknown = set(body) - set(asdict(current))
    if unknown:
        raise ValueError(f"Unknown field(s): {', '.join(sorted(unknown))}.")
    merged = {**asdict(current), **body}
    if not isinstance(merged["enabled"], bool):
        raise ValueError("'enabled' must be true or false.")
    for key in ("limit", "delay_ms"):
        if isinstance(merged[key], bool) or not isinstance(merged[key], int) or merged[key] < 0:
            raise ValueError(f"'{key}' must be a non-negative integer.")
    window = merged["window_seconds"]
    if isinstance(window, bool) or not isinstance(window, int | float) or window <= 0:
        raise ValueError("'window_seconds' must be a positive number.")
    threshold = merged["delay_threshold"]
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0
    ):
        raise ValueError("'delay_threshold' must be a non-negative integer or null.")
    merged["window_seconds"] = float(window)
    return RateLimitSettings(**merged)


def admin_routes(emu: Emulator) -> list[BaseRoute]:
    """``GET``/``PUT /_admin/rate-limit``."""
    limiter = limiter_of(emu)

    async def rate_limit(request: Request) -> Response:
        if request.method == "PUT":
            try:
                limiter.configure(_settings(await request.json(), limiter.settings))
            except ValueError as err:
                return JSONResponse({"error": "bad_request", "message": str(err)}, 400)
        return JSONResponse(asdict(limiter.settings))

    return [Route("/_admin/rate-limit", rate_limit, methods=["GET", "PUT"])]
