"""Real local receivers for notifications: an HTTPS webhook server and an SMTP server with
STARTTLS (aiosmtpd), both on 127.0.0.1 with their own throwaway CA (trustme, as the emulator
makes one). Tests assert on what they received.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme


@dataclass
class Tls:
    """A throwaway CA (its PEM at ``ca_bundle``) and a server context for 127.0.0.1."""

    ca_bundle: Path
    server: ssl.SSLContext


def make_tls(directory: Path) -> Tls:
    ca = trustme.CA(organization_name="patwarden test receivers")
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    bundle = directory / "receivers-ca.pem"
    bundle.write_bytes(ca.cert_pem.bytes())
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    return Tls(ca_bundle=bundle, server=context)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Received:
    """One request the webhook receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """An HTTPS server recording every POST; ``status`` is what it answers."""

    url: str
    requests: list[Received] = field(default_factory=list)
    status: int = 200

    def on(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]


@contextmanager
def webhook_receiver(tls: Tls) -> Iterator[WebhookReceiver]:
    lock = threading.Lock()
    receiver = WebhookReceiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with lock:
                receiver.requests.append(
                    Received(path=self.path, headers=dict(self.headers.items()), body=body)
                )
            self.send_response(receiver.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    with serve_https(tls, Handler) as url:
        receiver.url = url
        yield receiver


@contextmanager
def serve_https(tls: Tls, handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve *handler* over HTTPS on 127.0.0.1 (a free port) with *tls*; yield the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.socket = tls.server.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class SmtpReceiver:
    """An aiosmtpd server that only accepts mail after STARTTLS; ``messages`` it received."""

    host: str
    port: int
    messages: list[Message] = field(default_factory=list)
    tls_sessions: list[bool] = field(default_factory=list)


@contextmanager
def smtp_receiver(tls: Tls) -> Iterator[SmtpReceiver]:
    from aiosmtpd.controller import Controller

    receiver = SmtpReceiver(host="127.0.0.1", port=free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            receiver.tls_sessions.append(session.ssl is not None)
            receiver.messages.append(message_from_bytes(envelope.original_content))
            return "250 OK"

    controller = Controller(
        Handler(),
        hostname=receiver.host,
        port=receiver.port,
        tls_context=tls.server,
        require_starttls=True,
    )
    controller.start()
    try:
        yield receiver
    finally:
        controller.stop()
