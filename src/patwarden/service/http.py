"""The endpoints of ``patwarden serve``: ``/healthz``, ``/readyz``, ``/metrics`` and ``/``.

A small threaded HTTP server (the standard library's) on ``service.listen`` — loopback by
default. With ``service.bearer_token`` every endpoint but ``/healthz`` wants
``Authorization: Bearer <token>`` (compared in constant time); with ``service.tls`` it speaks
HTTPS, and with ``tls.client_ca`` every client must present a certificate that CA signed (mTLS).
Responses never carry a secret; every one has ``Cache-Control: no-store``.
"""

from __future__ import annotations

import hmac
import json
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from patwarden.config.service import ServiceConfig, split_listen
from patwarden.errors import ConfigError
from patwarden.secret import Secret
from patwarden.service.metrics import CONTENT_TYPE
from patwarden.service.snapshot import Snapshot
from patwarden.service.status_page import CSP, render_status_page

__all__ = ["Endpoints", "HttpServer"]


class Endpoints:
    """What the handler needs: the latest snapshot, the metrics text, the bearer token."""

    def __init__(
        self,
        *,
        snapshot: Callable[[], Snapshot],
        metrics: Callable[[], bytes],
        bearer_token: Secret | None,
    ) -> None:
        self.snapshot = snapshot
        self.metrics = metrics
        self.bearer_token = bearer_token

    def authorized(self, header: str | None) -> bool:
        if self.bearer_token is None:
            return True
        expected = f"Bearer {self.bearer_token.reveal()}".encode()
        return hmac.compare_digest((header or "").encode(), expected)

    def readiness(self) -> tuple[int, dict[str, Any]]:
        snap = self.snapshot()
        problems = snap.problems
        body = {
            "ready": not problems,
            "role": snap.role,
            "problems": problems,
            "config": {"source": snap.config_source, "reload_error": snap.config_error},
            "state": {"ok": snap.state_error is None, "error": snap.state_error},
            "identities": [
                {
                    "name": i.name,
                    "kind": i.kind,
                    "ok": i.ok,
                    "detail": i.detail,
                    "fix": i.fix,
                    "relogin_deadline": i.relogin_deadline.isoformat()
                    if i.relogin_deadline
                    else None,
                }
                for i in snap.identities
            ],
        }
        return (200 if not problems else 503), body


def _handler(endpoints: Endpoints) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "patwarden"
        sys_version = ""
        timeout = 30  # seconds: an idle or stalled client gives its thread back

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._send(200, b"ok\n", "text/plain; charset=utf-8")
                return
            if not endpoints.authorized(self.headers.get("Authorization")):
                self._send(
                    401,
                    b"bearer token required\n",
                    "text/plain; charset=utf-8",
                    extra={"WWW-Authenticate": 'Bearer realm="patwarden"'},
                )
                return
            if path == "/readyz":
                status, body = endpoints.readiness()
                self._send(status, json.dumps(body, indent=1).encode(), "application/json")
            elif path == "/metrics":
                self._send(200, endpoints.metrics(), CONTENT_TYPE)
            elif path in ("/", "/index.html"):
                page = render_status_page(endpoints.snapshot()).encode()
                self._send(
                    200,
                    page,
                    "text/html; charset=utf-8",
                    extra={
                        "Content-Security-Policy": CSP,
                        "X-Content-Type-Options": "nosniff",
                        "Referrer-Policy": "no-referrer",
                        "X-Frame-Options": "DENY",
                    },
                )
            else:
                self._send(404, b"not found\n", "text/plain; charset=utf-8")

        def do_HEAD(self) -> None:
            self.do_GET()

        def _send(
            self,
            status: int,
            body: bytes,
            content_type: str,
            *,
            extra: dict[str, str] | None = None,
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # access logs would drown the service's own lines

    return Handler


class HttpServer:
    """The endpoints on ``service.listen``, served from a daemon thread."""

    def __init__(self, settings: ServiceConfig, endpoints: Endpoints) -> None:
        host, port = split_listen(settings.listen)
        try:
            self._server = ThreadingHTTPServer((host, port), _handler(endpoints))
        except OSError as err:
            raise ConfigError(
                f"cannot listen on {settings.listen}: {err.strerror}",
                hint="pick a free port with service.listen (or --listen), or stop whatever "
                "holds it",
            ) from None
        self._server.daemon_threads = True
        if settings.tls is not None:
            # The handshake happens in the request's thread, so a client that never completes
            # it cannot hold up the accept loop.
            self._server.socket = _tls_context(settings).wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self.scheme = "https" if settings.tls is not None else "http"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="patwarden-http", daemon=True
        )

    @property
    def address(self) -> str:
        host, port = str(self._server.server_address[0]), self._server.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        return f"{self.scheme}://{shown}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _tls_context(settings: ServiceConfig) -> ssl.SSLContext:
    tls = settings.tls
    assert tls is not None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(tls.certificate), str(tls.key))
        if tls.client_ca is not None:
            context.load_verify_locations(cafile=str(tls.client_ca))
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(
            f"cannot use service.tls: {err}",
            hint="point service.tls.certificate/key at a PEM certificate and its key, and "
            "client_ca at the CA of the clients",
        ) from None
    return context
