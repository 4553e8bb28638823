"""The run's shared SDK clients: built once per key across threads, closed once, with the pool."""

from __future__ import annotations

import threading
import time

import pytest

from patwarden.sinks.client_pool import ClientPool


class _Client:
    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def test_threads_asking_at_once_get_one_client_built_once() -> None:
    pool = ClientPool()
    builds: list[str] = []

    def build() -> _Client:
        builds.append("kv")
        time.sleep(0.05)  # long enough for every thread to ask while it builds
        return _Client("kv")

    got: list[_Client] = []
    threads = [
        threading.Thread(target=lambda: got.append(pool.get(("key_vault", "a"), build)))
        for _ in range(16)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert builds == ["kv"]
    assert len(got) == 16
    assert all(client is got[0] for client in got)
    other = pool.get(("key_vault", "b"), lambda: _Client("b"))
    assert other is not got[0]
    assert len(pool) == 2


def test_close_closes_every_client_once_and_refuses_later_use() -> None:
    pool = ClientPool()
    a = pool.get("a", lambda: _Client("a"))
    b = pool.get("b", lambda: _Client("b"))
    pool.close()
    pool.close()
    assert (a.closed, b.closed) == (1, 1)
    with pytest.raises(RuntimeError, match="closed"):
        pool.get("a", lambda: _Client("a"))


def test_a_failed_build_is_not_kept() -> None:
    pool = ClientPool()

    def broken() -> _Client:
        raise OSError("no CA file")

    with pytest.raises(OSError, match="no CA file"):
        pool.get("a", broken)
    assert pool.get("a", lambda: _Client("a")).name == "a"
