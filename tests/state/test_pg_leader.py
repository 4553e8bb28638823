"""Leadership and fencing of replicas on one PostgreSQL state, with real processes and signals."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from patwarden.rotation.ports import Leadership, StateFenced
from patwarden.state.pg_leader import PostgresLeadership
from patwarden.state.postgres import PostgresBackend
from tests.state.test_contract import operation
from tests.support import clock
from tests.support.state_servers import PostgresServer

FAILOVER = timedelta(seconds=3)

# A replica in another process: leads, journals one step, then says so and waits; when told
# (a line on stdin) it journals again and prints what happened.
_REPLICA = """
import sys
from datetime import timedelta
from patwarden.clock import SystemClock
from patwarden.rotation.ports import StateFenced
from patwarden.state.pg_leader import PostgresLeadership
from patwarden.state.postgres import PostgresBackend
from tests.state.test_contract import operation
clock = SystemClock()
backend = PostgresBackend(url=sys.argv[1], now=clock.now)
leader = PostgresLeadership(backend, failover=timedelta(seconds=float(sys.argv[2])))
assert leader.try_acquire(now=clock.now())
store = backend.store(fence=leader)
store.record(operation(op_id="a" * 32))
print("leading", leader.epoch, flush=True)
sys.stdin.readline()
try:
    store.record(operation(op_id="a" * 32))
    print("wrote", flush=True)
except StateFenced:
    print("fenced", leader.try_acquire(now=clock.now()), flush=True)
"""


@pytest.fixture
def backend(postgres_server: PostgresServer) -> Iterator[PostgresBackend]:
    backend = PostgresBackend(url=postgres_server.new_database(), now=clock.now)
    yield backend
    backend.close()


def _leader(backend: PostgresBackend) -> PostgresLeadership:
    return PostgresLeadership(backend, failover=FAILOVER)


def test_one_leader_at_a_time_and_its_writes_carry_its_epoch(backend: PostgresBackend) -> None:
    first, second = _leader(backend), _leader(backend)
    assert isinstance(first, Leadership)
    assert first.try_acquire(now=clock.now())
    assert not second.try_acquire(now=clock.now())
    assert first.try_acquire(now=clock.now())  # renews
    assert (first.is_leader, first.epoch, second.is_leader, second.epoch) == (True, 1, False, None)
    assert second.describe_holder().startswith(first.holder)
    store = backend.store(fence=first)
    store.record(operation())
    assert store.journal_epochs("1" * 32) == [1]
    first.release()
    assert second.try_acquire(now=clock.now())  # at once after a release
    assert second.epoch == 2
    with pytest.raises(StateFenced, match="no longer leads"):
        store.record(operation())
    assert store.journal_epochs("1" * 32) == [1]
    second.release()
    first.release()


def test_a_dead_leaders_session_hands_over_at_once(backend: PostgresBackend) -> None:
    first, second = _leader(backend), _leader(backend)
    assert first.try_acquire(now=clock.now())
    assert first._conn is not None
    first._conn.close()  # what the server sees when the leader's process dies
    started = time.monotonic()
    while not second.try_acquire(now=clock.now()):  # the server drops the lock as it notices
        assert time.monotonic() - started < 2, "no takeover after the leader's session ended"
        time.sleep(0.05)
    assert time.monotonic() - started < FAILOVER.total_seconds()  # not a lapsed lease
    assert not first.try_acquire(now=clock.now())  # its renewal finds epoch 2
    second.release()
    first.release()


def test_an_unfenced_store_is_not_checked(backend: PostgresBackend) -> None:
    leader = _leader(backend)
    assert leader.try_acquire(now=clock.now())
    backend.store().record(operation())  # `rotate` beside serve: guarded by token locks only
    assert backend.store().journal_epochs("1" * 32) == [None]
    leader.release()


def test_a_paused_leader_is_replaced_after_the_lease_and_fenced(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.new_database()
    replica = subprocess.Popen(
        [sys.executable, "-c", _REPLICA, url, str(FAILOVER.total_seconds())],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert replica.stdin is not None
    assert replica.stdout is not None
    backend = PostgresBackend(url=url, now=clock.now)
    try:
        assert replica.stdout.readline().split() == ["leading", "1"]
        standby = _leader(backend)
        assert not standby.try_acquire(now=clock.now())
        replica.send_signal(signal.SIGSTOP)
        paused = time.monotonic()
        while not standby.try_acquire(now=clock.now()):
            assert time.monotonic() - paused < FAILOVER.total_seconds() + 5, "no failover"
            time.sleep(0.2)
        failover = time.monotonic() - paused
        assert standby.epoch == 2
        replica.send_signal(signal.SIGCONT)
        replica.stdin.write("go\n")
        replica.stdin.flush()
        assert replica.stdout.readline().split() == ["fenced", "False"]
        assert replica.wait(10) == 0
        assert backend.store().journal_epochs("a" * 32) == [1]  # nothing after fencing
        assert failover < FAILOVER.total_seconds()  # the lease is failover less two retries
        standby.release()
    finally:
        replica.kill()
        replica.wait()
        replica.stdout.close()
        replica.stdin.close()
        backend.close()


def test_the_lease_leaves_a_standby_time_to_take_over_within_failover(
    backend: PostgresBackend,
) -> None:
    default = PostgresLeadership(backend, failover=timedelta(seconds=30))
    assert default.retry_interval == timedelta(seconds=3)
    assert default.lease == timedelta(seconds=24)
    long = PostgresLeadership(backend, failover=timedelta(minutes=5))
    assert long.retry_interval == timedelta(seconds=5)  # never slower than serve's usual retry
    assert long.lease + 2 * long.retry_interval == timedelta(minutes=5)
