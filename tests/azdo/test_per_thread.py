"""Each thread sends through its own connection pool (real httpx transports, emulator over HTTPS).

Before, every worker of a fleet run shared one httpcore pool: each request scanned all of its
connections (quadratically) under one lock, and beyond 20 kept connections the workers' ones were
closed after each answer and TLS-handshaken again.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx

from patwarden.azdo.per_thread import PerThreadTransport
from patwarden.tls import ssl_context
from tests.conftest import RunningEmulator

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
