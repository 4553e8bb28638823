"""The Key Vault sink's HTTP transport caps answers in size and time (found by tests/reliability).

Before, azure-core's transport read a dripping answer for as long as the server liked (each
socket read has its own timeout) and an endless answer until memory ran out.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import pytest
from azure.core.exceptions import ServiceResponseError
from azure.core.rest import HttpRequest

from patwarden.sinks import bounded_http
from patwarden.sinks.bounded_http import bounded_transport

Behaviour = Callable[[socket.socket], None]


@contextmanager
def server(behaviour: Behaviour) -> Iterator[str]:
    """A plain-HTTP server on loopback that answers every connection with ``behaviour``."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                with suppress(OSError):
                    behaviour(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/secrets/x"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def endless(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
    for _ in range(4096):  # 256 MiB at most
        conn.sendall(b" " * 65536)


def drip(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 400\r\n\r\n")
    for _ in range(400):
        conn.sendall(b" ")
        time.sleep(0.02)


def fine(conn: socket.socket) -> None:
    conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{"value":1}')


@pytest.fixture(autouse=True)
def short_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bounded_http, "READ_TIMEOUT", 0.1)
    monkeypatch.setattr(bounded_http, "MAX_ANSWER_BYTES", 1 << 20)


@pytest.mark.parametrize(
    ("behaviour", "problem"),
    [(endless, "larger than 1 MiB"), (drip, "still arriving after 0.4 s")],
    ids=["endless", "drip"],
)
def test_an_answer_too_large_or_too_slow_is_a_response_error(
    behaviour: Behaviour, problem: str
) -> None:
    with server(behaviour) as url:
        transport = bounded_transport(verify=True)
        started = time.monotonic()
        with transport, pytest.raises(ServiceResponseError, match=problem):
            transport.send(HttpRequest("GET", url))
    assert time.monotonic() - started < 3


def test_a_normal_answer_passes_untouched() -> None:
    with server(fine) as url:
        transport = bounded_transport(verify=True)
        with transport:
            response = transport.send(HttpRequest("GET", url))
            response.read()
    assert response.status_code == 200
    assert response.json() == {"value": 1}


def test_the_environment_is_read_once_for_the_clients_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/corp-ca.pem")
    vault = bounded_transport(verify=True, url="https://ops-kv.vault.azure.net")
    assert vault.session is not None
    assert vault.session.trust_env is False  # requests scans os.environ per request otherwise
    assert vault.session.proxies["https"] == "http://proxy.example:3128"
    assert vault.connection_config.verify == "/etc/corp-ca.pem"
    bypassed = bounded_transport(verify="/ca.pem", url="https://kv.internal.example")
    assert bypassed.session is not None
    assert "https" not in bypassed.session.proxies
    assert bypassed.connection_config.verify == "/ca.pem"  # a configured bundle is kept
