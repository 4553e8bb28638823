"""Fault injection: make matching requests fail, stall, vanish or wait, on purpose.

A rule matches ``"<METHOD> <path>"`` with a regular expression (``re.search``) and applies one
kind of fault, either before the request reaches the service (nothing changed) or, with
``after: true``, after the service acted but before the client sees the response (a lost
response). ``count`` limits a rule to its next N applications; ``probability`` with ``seed``
makes it fire at random, reproducibly. Rules are tried in the order they were added: every
firing ``latency`` rule adds its delay, and the first firing rule of any other kind applies.

``reset`` and ``timeout`` drop the TCP connection without a response. uvicorn does not expose
the connection to ASGI apps, so :class:`ConnectionExposingH11Protocol` (passed to
``uvicorn.Config(http=...)``) puts it in ``scope["extensions"]``. The admin endpoints live in
:mod:`patwarden_emulator.faults.admin`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import socket
import struct
from dataclasses import dataclass, field
from typing import Any, Literal

from uvicorn.protocols.http.h11_impl import H11Protocol

from patwarden_emulator.context import Emulator
from patwarden_emulator.requestlog import (
    ADMIN_PREFIX,
    FAULT_KEY,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
)
from patwarden_emulator.service_errors import Headers, status_error, throttle_error

KINDS = ("status", "throttle", "timeout", "reset", "latency", "hold")
Kind = Literal["status", "throttle", "timeout", "reset", "latency", "hold"]
TRANSPORT_EXTENSION = "patwarden.transport"
DEFAULT_TIMEOUT_MS = 60_000


class ConnectionExposingH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, also handing each request's transport to the app.

    The transport is put at ``scope["extensions"]["patwarden.transport"]`` so fault injection
    can abort the connection (a real TCP reset) instead of answering.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        inner = self.app

        async def app(scope: Any, receive: Any, send: Any) -> None:
            extensions = scope.get("extensions") or {}
            extensions[TRANSPORT_EXTENSION] = self.transport
            scope["extensions"] = extensions
            await inner(scope, receive, send)

        self.app = app


@dataclass
class FaultRule:
    """One fault-injection rule and its counters (runtime state, not persisted)."""

    id: int
    route: re.Pattern[str]
    kind: Kind
    status: int = 503
    retry_after: int = 2
    latency_ms: int | None = None
    probability: float = 1.0
    seed: int | None = None
    remaining: int | None = None
    after: bool = False
    matched: int = 0
    applied: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def fires(self, target: str) -> bool:
        """Whether the rule applies to this request (counts the match and the application)."""
        if self.remaining == 0 or not self.route.search(target):
            return False
        self.matched += 1
        if self.probability < 1.0 and self.rng.random() >= self.probability:
            return False
        self.applied += 1
        if self.remaining is not None:
            self.remaining -= 1
        return True

    def as_json(self) -> dict[str, Any]:
        """The admin API's view of the rule."""
        return {
            "id": self.id,
            "route": self.route.pattern,
            "kind": self.kind,
            "status": self.status,
            "retry_after": self.retry_after,
            "latency_ms": self.latency_ms,
            "probability": self.probability,
            "seed": self.seed,
            "remaining": self.remaining,
            "after": self.after,
            "matched": self.matched,
            "applied": self.applied,
        }


@dataclass
class HeldRequest:
    """A request (or response, for ``after`` rules) parked by a ``hold`` rule."""

    method: str
    path: str
    after: bool
    event: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    action: Literal["continue", "drop"] = "continue"


@dataclass
class Decision:
    """What to do to one request at one point (before or after the service)."""

    latency_ms: int = 0
    rule: FaultRule | None = None


class Faults:
    """The active rules and the parked requests of one emulator."""

    def __init__(self) -> None:
        self.rules: list[FaultRule] = []
        self.held: list[HeldRequest] = []
        self._next_id = 1

    def add(self, **spec: Any) -> FaultRule:
        """Add a rule; keyword arguments are :class:`FaultRule` fields (validated by the caller)."""
        seed = spec.get("seed")
        rule = FaultRule(id=self._next_id, rng=random.Random(seed), **spec)  # noqa: S311 - fault injection, not cryptography
        self._next_id += 1
        self.rules.append(rule)
        return rule

    def remove(self, rule_id: int) -> bool:
        """Delete one rule; False if there is none with that id."""
        before = len(self.rules)
        self.rules = [rule for rule in self.rules if rule.id != rule_id]
        return len(self.rules) != before

    def decide(self, target: str, *, after: bool) -> Decision:
        """Evaluate the rules of one phase against ``"<METHOD> <path>"``."""
        decision = Decision()
        for rule in self.rules:
            if rule.after != after or not rule.fires(target):
                continue
            if rule.kind == "latency":
                decision.latency_ms += rule.latency_ms or 0
                continue
            decision.rule = rule
            break
        return decision

    def release(self, *, action: Literal["continue", "drop"], count: int | None = None) -> int:
        """Let parked requests go on (or drop their connections); return how many."""
        chosen = list(self.held) if count is None else self.held[:count]
        for held in chosen:
            held.action = action
            held.event.set()
            self.held.remove(held)
        return len(chosen)

    def clear(self) -> None:
        """Remove every rule and drop every parked request."""
        self.rules.clear()
        self.release(action="drop")


def faults_of(emu: Emulator) -> Faults:
    """The emulator's fault registry (created on first use)."""
    faults = emu.runtime.get("faults")
    if not isinstance(faults, Faults):
        faults = Faults()
        emu.runtime["faults"] = faults
    return faults


def reset(emu: Emulator) -> None:
    """No rules, nothing parked."""
    faults_of(emu).clear()


# connection handling ---------------------------------------------------------------------------
async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that first hands out an already read body, then defers to the server."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _drop(scope: Scope, receive: Receive, send: Send) -> None:
    """Abort the connection with a TCP reset and no response."""
    transport = (scope.get("extensions") or {}).get(TRANSPORT_EXTENSION)
    if transport is None:
        # Not served by ConnectionExposingH11Protocol: the closest honest substitute is a
        # response that promises a body and never delivers it (the client sees a broken read).
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1")]}
        )
        return
    raw = transport.get_extra_info("socket")
    if raw is not None:
        with contextlib.suppress(OSError):  # already closed by the client
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    await _wait_disconnect(receive)


async def _respond(send: Send, status: int, headers: Headers, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class FaultMiddleware:
    """ASGI middleware applying the emulator's fault rules to every non-admin request."""

    def __init__(self, app: ASGIApp, *, emu: Emulator) -> None:
        self.app = app
        self.faults = faults_of(emu)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        target = f"{scope['method']} {scope['path']}"
        before = self.faults.decide(target, after=False)
        if before.latency_ms:
            await asyncio.sleep(before.latency_ms / 1000)
        if before.rule is not None:
            self._note(scope, before.rule)
            if before.rule.kind != "hold":
                await self._fail(before.rule, scope, receive, send)
                return
            body = await _read_body(receive)
            if not await self._hold(before.rule, scope):
                await _drop(scope, receive, send)
                return
            receive = _replaying(body, receive)
        after = self.faults.decide(target, after=True)
        if after.rule is None and not after.latency_ms:
            await self.app(scope, receive, send)
            return
        buffered: list[Message] = []

        async def buffer(message: Message) -> None:
            buffered.append(message)

        await self.app(scope, receive, buffer)
        if after.latency_ms:
            await asyncio.sleep(after.latency_ms / 1000)
        if after.rule is not None:
            self._note(scope, after.rule)
            if after.rule.kind != "hold":
                await self._fail(after.rule, scope, receive, send)
                return
            if not await self._hold(after.rule, scope):
                await _drop(scope, receive, send)
                return
        for message in buffered:
            await send(message)

    @staticmethod
    def _note(scope: Scope, rule: FaultRule) -> None:
        state = scope.setdefault("state", {})
        state[FAULT_KEY] = {"rule": rule.id, "kind": rule.kind, "after": rule.after}

    async def _hold(self, rule: FaultRule, scope: Scope) -> bool:
        """Park until released; True to carry on, False to drop the connection."""
        held = HeldRequest(method=scope["method"], path=scope["path"], after=rule.after)
        self.faults.held.append(held)
        await held.event.wait()
        return held.action == "continue"

    async def _fail(self, rule: FaultRule, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if rule.kind == "status":
            await _respond(send, rule.status, *status_error(path=path, status=rule.status))
        elif rule.kind == "throttle":
            headers, body = throttle_error(path=path, retry_after=rule.retry_after, limit=200)
            await _respond(send, 429, headers, body)
        elif rule.kind == "timeout":
            seconds = (rule.latency_ms or DEFAULT_TIMEOUT_MS) / 1000
            with contextlib.suppress(TimeoutError):
                # Stop waiting early if the client gives up first.
                await asyncio.wait_for(_wait_disconnect(receive), timeout=seconds)
            await _drop(scope, receive, send)
        else:  # reset
            await _drop(scope, receive, send)
