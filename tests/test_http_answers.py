"""The sender both HTTP clients use: the environment's proxy (through a real CONNECT proxy on
loopback), NO_PROXY, answers read whole; and each thread sending through its own connection pool
(real httpx transports, emulator over HTTPS). Before, every worker of a fleet run shared one
httpcore pool: each request scanned all of its connections (quadratically) under one lock, and
beyond 20 kept connections the workers' ones were closed after each answer and TLS-handshaken
again."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from patwarden.http_answers import PerThreadTransport, Sender, environment_proxy
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


THREADS = 4


def _factory(emulator: RunningEmulator, built: list[httpx.HTTPTransport]) -> Any:
    verify = ssl_context(emulator.ca_bundle)

    def build() -> httpx.HTTPTransport:
        transport = httpx.HTTPTransport(verify=verify)
        built.append(transport)
        return transport

    return build


def _connections(transport: httpx.HTTPTransport) -> int:
    return len(transport._pool.connections)


def test_each_thread_reuses_its_own_connection(emulator: RunningEmulator) -> None:
    built: list[httpx.HTTPTransport] = []
    transport = PerThreadTransport(_factory(emulator, built))
    client = httpx.Client(transport=transport)  # one client shared by the threads, as in a run
    url = emulator["key_vault_url"]
    statuses: list[int] = []
    barrier = threading.Barrier(THREADS)

    def worker() -> None:
        barrier.wait()
        for _ in range(3):
            statuses.append(client.get(url).status_code)

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(statuses) == 3 * THREADS
    assert all(status < 500 for status in statuses)
    assert len(built) == THREADS  # one transport per thread …
    assert [_connections(t) for t in built] == [1] * THREADS  # … each reusing one connection
    client.close()
    assert [_connections(t) for t in built] == [0] * THREADS
    assert len(transport) == 0


def test_an_ended_threads_transport_is_closed_when_another_thread_starts(
    emulator: RunningEmulator,
) -> None:
    built: list[httpx.HTTPTransport] = []
    transport = PerThreadTransport(_factory(emulator, built))
    client = httpx.Client(transport=transport)
    url = emulator["key_vault_url"]
    first = threading.Thread(target=lambda: client.get(url))
    first.start()
    first.join()
    assert _connections(built[0]) == 1
    assert client.get(url).status_code < 500  # this thread builds its own: the ended one goes
    assert len(built) == 2
    assert len(transport) == 1
    assert _connections(built[0]) == 0
    client.close()


def test_a_closed_transport_builds_a_new_one_for_the_next_request(
    emulator: RunningEmulator,
) -> None:
    built: list[httpx.HTTPTransport] = []
    transport = PerThreadTransport(_factory(emulator, built))
    url = emulator["key_vault_url"]
    request = httpx.Request("GET", url)
    transport.handle_request(request).close()
    transport.close()
    answer = transport.handle_request(httpx.Request("GET", url))
    answer.read()
    assert answer.status_code < 500
    assert len(built) == 2  # the closed one was not reused
    assert "threads=1" in repr(transport)
    transport.close()
