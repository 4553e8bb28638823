"""The sender both HTTP clients use: the environment's proxy (through a real CONNECT proxy on
loopback), NO_PROXY, and answers read whole."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from patwarden.http_answers import Sender, environment_proxy
from patwarden.tls import ssl_context
from tests.conftest import RunningEmulator


@contextlib.contextmanager
def connect_proxy() -> Iterator[tuple[str, list[str]]]:
    """An HTTP CONNECT proxy on loopback that relays bytes and records each CONNECT target."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    targets: list[str] = []
    stop = threading.Event()

    def relay(client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            target = head.split(b" ", 2)[1].decode()
            targets.append(target)
            host, _, port = target.rpartition(":")
            with socket.create_connection((host, int(port))) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                pair = [client, upstream]
                while not stop.is_set():
                    ready, _, _ = select.select(pair, [], [], 0.2)
                    for sock in ready:
                        data = sock.recv(65536)
                        if not data:
                            return
                        (upstream if sock is client else client).sendall(data)

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=relay, args=(client,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", targets
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def _sender(emulator: RunningEmulator) -> Sender:
    return Sender(
        verify=ssl_context(emulator.ca_bundle), timeout=httpx.Timeout(10.0), headers={"X-A": "1"}
    )


def _get(sender: Sender, url: str) -> httpx.Response:
    request = sender.build("GET", url, params={"api-version": "7.5"})
    return sender.send(request, max_bytes=1 << 20, deadline=10)


def test_a_host_the_environment_proxies_goes_through_the_proxy(
    emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"{emulator['key_vault_url']}/secrets/none/"
    host = httpx.URL(url).netloc.decode()
    with connect_proxy() as (proxy, targets):
        monkeypatch.setenv("HTTPS_PROXY", proxy)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        sender = _sender(emulator)
        try:
            answer = _get(sender, url)
        finally:
            sender.close()
    assert answer.status_code == 401  # the vault's challenge, through the tunnel
    assert targets == [host]


def test_no_proxy_sends_directly(
    emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    with connect_proxy() as (proxy, targets):
        monkeypatch.setenv("HTTPS_PROXY", proxy)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        sender = _sender(emulator)
        try:
            answer = _get(sender, f"{emulator['key_vault_url']}/secrets/none/")
        finally:
            sender.close()
    assert answer.status_code == 401
    assert targets == []


def test_a_request_carries_the_defaults_the_timeouts_and_the_query() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(302, headers={"Location": "https://elsewhere.example/"})

    sender = Sender(
        verify=True,
        timeout=httpx.Timeout(7.0, connect=3.0),
        headers={"User-Agent": "ua", "Accept": "application/json"},
        transport=httpx.MockTransport(answer),
    )
    request = sender.build("GET", "https://h.example/a", params={"$top": "1"}, headers={"X": "y"})
    response = sender.send(request, max_bytes=1024, deadline=5)
    assert response.status_code == 302  # a redirect is an answer, never followed
    [sent] = seen
    assert sent.url.params["$top"] == "1"
    assert (sent.headers["user-agent"], sent.headers["x"]) == ("ua", "y")
    assert sent.extensions["timeout"] == {"connect": 3.0, "read": 7.0, "write": 7.0, "pool": 7.0}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"HTTPS_PROXY": "http://p:3128"}, "http://p:3128"),
        ({"HTTPS_PROXY": "p:3128"}, "http://p:3128"),
        ({"ALL_PROXY": "http://all:1"}, "http://all:1"),
        ({"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "vault.example"}, None),
        ({"HTTP_PROXY": "http://only-http:1"}, None),
        ({}, None),
    ],
)
def test_the_environment_proxy_of_a_host(
    env: dict[str, str], expected: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert environment_proxy("https", "vault.example") == expected
