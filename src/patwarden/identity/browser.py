"""Browser sign-in: the authorization code flow with PKCE through MSAL, a loopback redirect.

MSAL builds the request (``initiate_auth_code_flow``: PKCE ``S256`` challenge, ``state``,
``nonce``) and redeems the answer (``acquire_token_by_auth_code_flow``: checks ``state`` and sends
the ``code_verifier``) — the same two calls ``acquire_token_interactive`` is made of. patwarden
runs the loopback listener itself so that it (a) always prints the sign-in URL, for an operator
whose browser does not open or who forwards the port over SSH, and (b) listens on 127.0.0.1 only
(MSAL's own listener binds every interface when it detects a container). The redirect URI is
``http://localhost:<port>``, what Entra's "Mobile and desktop applications" platform accepts.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlsplit

log = logging.getLogger(__name__)
DEFAULT_BROWSER_TIMEOUT = 600.0
_DONE = "Signed in. You can close this tab and return to patwarden."


@dataclass(frozen=True, kw_only=True)
class BrowserOptions:
    """How ``patwarden login --browser`` runs."""

    open_browser: bool = True  # False: only print the URL (open it yourself)
    port: int = 0  # 0: any free port


class _Server(HTTPServer):
    expected_state: str = ""
    answer: dict[str, str] | None = None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._answer(dict(parse_qsl(urlsplit(self.path).query)))

    def do_POST(self) -> None:
        length = min(int(self.headers.get("Content-Length") or 0), 1 << 16)
        self._answer(dict(parse_qsl(self.rfile.read(length).decode("utf-8", "replace"))))

    def _answer(self, params: dict[str, str]) -> None:
        if "code" not in params and "error" not in params:
            self._reply(404, "Not the sign-in answer.")
            return
        if params.get("state") != self.server.expected_state:
            self._reply(400, "This answer belongs to another sign-in; it was ignored.")
            return
        self.server.answer = params
        if "error" in params:
            self._reply(200, "The sign-in failed; patwarden shows why. You can close this tab.")
        else:
            self._reply(200, _DONE)

    def _reply(self, status: int, text: str) -> None:
        body = f"<!doctype html><title>patwarden</title><p>{html.escape(text)}</p>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Nothing to stderr: the request line carries the authorization code for ``query``."""


class LoopbackReceiver:
    """A one-shot HTTP listener on 127.0.0.1 for the authorization answer (RFC 8252 §7.3)."""

    def __init__(self, port: int = 0) -> None:
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.timeout = 0.5

    def __enter__(self) -> LoopbackReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def redirect_uri(self) -> str:
        """``http://localhost:<port>``."""
        return f"http://localhost:{self._server.server_address[1]}"

    def wait(self, *, state: str, timeout: float) -> dict[str, str] | None:
        """The answer carrying *state* (a code or an error), or None after *timeout* seconds."""
        self._server.expected_state = state
        deadline = time.monotonic() + timeout
        while self._server.answer is None and time.monotonic() < deadline:
            self._server.handle_request()
        return self._server.answer

    def close(self) -> None:
        """Stop listening."""
        self._server.server_close()


def _open_system_browser(url: str) -> bool:
    import webbrowser

    try:
        return bool(webbrowser.open(url))
    except webbrowser.Error:
        return False


def sign_in_with_browser(
    app: Any,
    *,
    scopes: Sequence[str],
    login_hint: str | None,
    options: BrowserOptions,
    out: TextIO,
    timeout: float | None,
) -> dict[str, Any]:
    """Run the browser sign-in with MSAL application *app*; return MSAL's result dict.

    Prints the URL to *out*, opens the system browser unless told not to, and waits for the
    redirect to the loopback port. A timeout answers ``{"error": "timeout"}``.
    """
    with LoopbackReceiver(options.port) as receiver:
        flow = app.initiate_auth_code_flow(
            list(scopes),
            redirect_uri=receiver.redirect_uri,
            login_hint=login_hint,
            prompt="select_account",
            response_mode="form_post",
        )
        url = str(flow["auth_uri"])
        print(
            f"To sign in, open this page in a browser on this machine:\n  {url}\n"
            f"patwarden waits for the answer on {receiver.redirect_uri}. If the page stops at an "
            "error (AADSTSnnnnn) instead, press Ctrl+C and look the code up in the "
            "troubleshooting table of docs/identities.md.",
            file=out,
            flush=True,
        )
        if options.open_browser and not _open_system_browser(url):
            print("No browser could be opened here; open the page above yourself.", file=out)
        answer = receiver.wait(state=str(flow["state"]), timeout=timeout or DEFAULT_BROWSER_TIMEOUT)
    if answer is None:
        return {"error": "timeout", "error_description": "no answer from the browser in time"}
    result: dict[str, Any] = app.acquire_token_by_auth_code_flow(flow, answer, scopes=list(scopes))
    return result
