"""The person at the browser for `patwarden login --browser`, against the emulator's sign-in page.

Two players: :func:`walk_sign_in_with_playwright` drives Debian's Chromium headless through the
pages (the real browser test), :func:`walk_sign_in_over_http` submits the same forms with httpx
(fast, for tests whose subject is what comes after the sign-in). Both pick the account, type the
password, approve MFA and let the page send the code to patwarden's loopback listener.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import re
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.support.emulator import RunningEmulator

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [  # as tests/inventory/test_html_browser.py: nothing leaves the machine
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery staple 7"  # what :func:`set_rotator_password` gives the user
_URL = re.compile(r"^\s+(https://\S+/oauth2/v2\.0/authorize\?\S+)$", re.MULTILINE)


def set_rotator_password(emulator: RunningEmulator) -> str:
    """Give the seeded rotator a known password (the emulator keeps its own secret otherwise)."""
    username = str(emulator["identities"]["rotator"]["username"])
    emulator.admin(
        "POST", "/users/reset-password", json={"username": username, "password": PASSWORD}
    )
    return username


def sign_in_url(stream: Any, *, timeout: float = 30) -> tuple[str, list[str]]:
    """Read `login --browser`'s stderr until it prints the sign-in URL; (URL, lines read)."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        lines.append(line)
        found = _URL.search(line)
        if found:
            return found.group(1), lines
    raise AssertionError(f"login --browser printed no sign-in URL: {''.join(lines)!r}")


def _pinned_spki(url: str, ca_bundle: str) -> str:
    """The base64 SHA-256 of the public key the emulator serves, its chain verified with the
    emulator's CA: Chromium trusts exactly that key, certificate checks otherwise stay on."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    parts = urlsplit(url)
    context = ssl.create_default_context(cafile=ca_bundle)
    address = (parts.hostname, parts.port or 443)
    with (
        socket.create_connection(address, timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=parts.hostname) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    key = x509.load_der_x509_certificate(der).public_key()
    spki = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def walk_sign_in_with_playwright(url: str, *, username: str, ca_bundle: str) -> str:
    """Play the operator in headless Chromium; return the text the loopback page showed."""
    from playwright.sync_api import sync_playwright

    pin = f"--ignore-certificate-errors-spki-list={_pinned_spki(url, ca_bundle)}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, pin])
        try:
            context = browser.new_context()
            page = context.new_page()
            page.goto(url)
            page.get_by_role("heading", name="Pick an account").wait_for()
            page.get_by_role("button", name=username).click()
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("heading", name="Approve sign-in request").wait_for()
            page.get_by_role("button", name="Approve").click()
            page.wait_for_url(re.compile(r"^http://localhost:\d+/?$"))
            page.wait_for_load_state("load")
            return str(page.inner_text("body"))
        finally:
            browser.close()


def _form(page: str) -> tuple[str, dict[str, str]]:
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', page)[1])  # type: ignore[index]
    fields = {
        html.unescape(name): html.unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)
    }
    return action, fields


def walk_sign_in_over_http(
    url: str, *, emulator: RunningEmulator, username: str, approve: bool = True
) -> httpx.Response:
    """Submit the sign-in pages' forms with httpx; return the last answer (the loopback's, or the
    emulator's when the sign-in stopped there)."""
    with emulator.http() as client:
        page = client.get(url)
        if "Pick an account" not in page.text:
            return page
        action, fields = _form(page.text)
        page = client.post(action, data={**fields, "username": username})
        action, fields = _form(page.text)
        page = client.post(action, data={**fields, "password": PASSWORD})
        if "Approve sign-in request" in page.text:
            action, fields = _form(page.text)
            decision = "approve" if approve else "deny"
            page = client.post(action, data={**fields, "decision": decision})
        if 'action="http://localhost' not in page.text:
            return page
        action, fields = _form(page.text)
    return httpx.post(action, data=fields, timeout=10)


def answer_in_background(
    process: subprocess.Popen[str], *, emulator: RunningEmulator, username: str
) -> threading.Thread:
    """Read the URL from a `login --browser --no-open` process and walk it over HTTP, in a
    thread (the process's stderr is read up to the URL)."""

    def walk() -> None:
        url, _ = sign_in_url(process.stderr)
        walk_sign_in_over_http(url, emulator=emulator, username=username)

    thread = threading.Thread(target=walk, daemon=True)
    thread.start()
    return thread


class WalkingStream(io.StringIO):
    """Where an in-process `login(browser=…)` prints the URL: walks the sign-in over HTTP in a
    thread as soon as the URL is printed (the login itself blocks on its loopback listener)."""

    def __init__(self, emulator: RunningEmulator, *, username: str) -> None:
        super().__init__()
        self.emulator = emulator
        self.username = username

    def write(self, text: str) -> int:
        found = _URL.search(text)
        if found:
            url = found.group(1)
            threading.Thread(
                target=walk_sign_in_over_http,
                args=(url,),
                kwargs={"emulator": self.emulator, "username": self.username},
                daemon=True,
            ).start()
        return super().write(text)


def browser_login_in_process(emulator: RunningEmulator, config: Path) -> None:
    """Sign the rotator of *config* in with the browser flow, without the CLI (the pages are
    submitted over HTTP); only the encrypted token cache stays behind."""
    from patwarden.config.model import load_config
    from patwarden.identity.browser import BrowserOptions
    from patwarden.identity.credential_set import CredentialSet
    from tests.support.clock import TestClock

    username = set_rotator_password(emulator)
    credentials = CredentialSet(load_config(config), clock=TestClock())
    try:
        credentials.user("rotator").login(
            out=WalkingStream(emulator, username=username),
            browser=BrowserOptions(open_browser=False),
            timeout=60,
        )
    finally:
        credentials.close()
