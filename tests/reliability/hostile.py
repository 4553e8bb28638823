"""A hostile HTTPS server on 127.0.0.1: a proxy in front of the emulator that mangles answers.

Every request is forwarded to the real emulator (so the service really acts, as a real server
would) unless a rule says otherwise; the first matching :class:`Rule` then decides what the
client gets instead of the real answer:

``truncate``  the real status and headers, half the body, then the connection closes
``garbage``   the real status, a body that is not JSON
``html``      HTTP 200 with an HTML page
``retype``    the real JSON with every value replaced by one of another type
``empty``     the real status with an empty body
``huge``      HTTP 200 JSON whose body never ends (the server counts what it sent)
``drip``      HTTP 200 with a body sent one byte at a time, every 0.25 s, for a minute
``silence``   nothing at all for a minute, then the connection closes

The proxy serves its own throwaway CA; clients trust a bundle with both CAs (``ca_bundle``).
"""

from __future__ import annotations

import json
import re
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trustme

from patwarden.tls import ssl_context
from tests.conftest import RunningEmulator

MANGLES = ("truncate", "garbage", "html", "retype", "empty", "huge", "drip", "silence")
HUGE_LIMIT = 256 << 20  # the server gives up after this much; a capped client stops far earlier
_HOP_HEADERS = {"host", "connection", "content-length", "transfer-encoding", "keep-alive"}


@dataclass
class Rule:
    """Mangle the next ``count`` requests whose ``"METHOD /path"`` matches ``route``."""

    route: str
    mangle: str
    count: int = 1_000_000
    forward: bool = True  # False: the emulator never sees the request


@dataclass
class Seen:
    """One request the proxy received, and what it did with it."""

    method: str
    path: str
    mangle: str | None
    sent_bytes: int = 0


def retyped(value: Any) -> Any:
    """The same shape with every value of another type (strings become numbers, and so on)."""
    if isinstance(value, dict):
        return {key: retyped(item) for key, item in value.items()}
    if isinstance(value, list):
        return {"unexpected": [retyped(item) for item in value]}
    if isinstance(value, str):
        return 12345
    if isinstance(value, bool | int | float):
        return ["x"]
    return "null?"


@dataclass
class HostileProxy:
    """The proxy; use :func:`hostile_proxy` to run one."""

    upstream: str
    upstream_ca: str
    ca: trustme.CA
    rules: list[Rule] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _client: httpx.Client | None = None

    def add(self, route: str, mangle: str, *, count: int = 1_000_000, forward: bool = True) -> None:
        """Mangle requests matching ``route`` (a regex searched in ``"METHOD /path"``)."""
        if mangle not in MANGLES:
            raise ValueError(mangle)
        with self._lock:
            self.rules.append(Rule(route, mangle, count, forward))

    def clear(self) -> None:
        """Relay everything unchanged from now on."""
        with self._lock:
            self.rules.clear()

    def _rule_for(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.count > 0 and re.search(rule.route, f"{method} {path.split('?')[0]}"):
                    rule.count -= 1
                    return rule
        return None

    def handle(self, conn: socket.socket) -> None:
        """Serve one request on ``conn`` (one request per connection)."""
        request = _read_request(conn)
        if request is None:
            return
        method, target, headers, body = request
        rule = self._rule_for(method, target)
        seen = Seen(method, target.split("?")[0], rule.mangle if rule else None)
        with self._lock:
            self.seen.append(seen)
        status, reply_headers, reply = 502, {}, b""
        if rule is None or rule.forward:
            assert self._client is not None
            forwarded = {k: v for k, v in headers.items() if k.lower() not in _HOP_HEADERS}
            try:
                answer = self._client.request(
                    method, self.upstream + target, headers=forwarded, content=body
                )
                status, reply = answer.status_code, answer.content
                reply_headers = {
                    k: v
                    for k, v in answer.headers.items()
                    if k.lower() not in _HOP_HEADERS and k.lower() != "content-encoding"
                }
            except httpx.HTTPError:
                status, reply = 502, b""
        _reply(conn, seen, rule.mangle if rule else None, status, reply_headers, reply)


def _read_request(conn: socket.socket) -> tuple[str, str, dict[str, str], bytes] | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip()] = value.strip()
    length = int(next((v for k, v in headers.items() if k.lower() == "content-length"), "0"))
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        rest += chunk
    return method, target, headers, rest[:length]


def _head(status: int, headers: dict[str, str], length: int | None) -> bytes:
    lines = [f"HTTP/1.1 {status} Hostile", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _reply(
    conn: socket.socket,
    seen: Seen,
    mangle: str | None,
    status: int,
    headers: dict[str, str],
    body: bytes,
) -> None:
    json_type = {"Content-Type": "application/json; charset=utf-8"}
    try:
        if mangle is None:
            conn.sendall(_head(status, headers, len(body)) + body)
        elif mangle == "truncate":
            conn.sendall(_head(status, headers, len(body) + 10) + body[: len(body) // 2])
        elif mangle == "garbage":
            junk = b"\x00\xffnot json at all {"
            conn.sendall(_head(status, {**headers, **json_type}, len(junk)) + junk)
        elif mangle == "html":
            page = b"<!DOCTYPE html><html><body><form action='/_signin'>Sign in</form></body>"
            conn.sendall(_head(200, {"Content-Type": "text/html"}, len(page)) + page)
        elif mangle == "retype":
            try:
                mangled = json.dumps(retyped(json.loads(body))).encode()
            except ValueError:
                mangled = b"[]"
            conn.sendall(_head(status, {**headers, **json_type}, len(mangled)) + mangled)
        elif mangle == "empty":
            conn.sendall(_head(status, headers, 0))
        elif mangle == "huge":
            conn.sendall(_head(200, json_type, None) + b'{"value": [')
            chunk = b'"x",' * 16384
            while seen.sent_bytes < HUGE_LIMIT:
                conn.sendall(chunk)
                seen.sent_bytes += len(chunk)
        elif mangle == "drip":
            conn.sendall(_head(200, json_type, 240))
            for _ in range(240):
                conn.sendall(b" ")
                seen.sent_bytes += 1
                time.sleep(0.25)
        elif mangle == "silence":
            time.sleep(60)
    except OSError:  # the client gave up: that is what a capped or timed-out client does
        return


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, proxy: HostileProxy, context: ssl.SSLContext) -> None:
        self.proxy = proxy
        self.context = context
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server = self.server
        assert isinstance(server, _Server)
        try:
            with server.context.wrap_socket(self.request, server_side=True) as conn:
                server.proxy.handle(conn)
        except (OSError, ssl.SSLError, ValueError):
            return


@contextmanager
def hostile_proxy(emulator: RunningEmulator, directory: Path) -> Iterator[HostileProxy]:
    """Run a proxy to ``emulator``; ``directory`` receives ``ca-bundle.pem`` (both CAs)."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    upstream = str(emulator["key_vault_url"]).rstrip("/")  # the emulator's one origin
    proxy = HostileProxy(upstream=upstream, upstream_ca=emulator.ca_bundle, ca=ca)
    bundle = directory / "ca-bundle.pem"
    bundle.write_bytes(Path(emulator.ca_bundle).read_bytes() + ca.cert_pem.bytes())
    server = _Server(proxy, context)
    proxy.url = f"https://127.0.0.1:{server.server_address[1]}"
    proxy._client = httpx.Client(verify=ssl_context(emulator.ca_bundle), timeout=30)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        proxy._client.close()
