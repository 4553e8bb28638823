"""Leadership of ``serve`` replicas on one PostgreSQL state: a lease row plus an advisory lock.

The leader holds the session advisory lock :data:`LEADER_KEY` on a connection of its own and the
lease row ``patwarden_leader`` (epoch, holder, backend pid, expiry), renewed by a background
thread every third of the lease. A standby tries every :attr:`PostgresLeadership.retry_interval`
(a tenth of ``failover``, at most 5 s) and takes over

- at its next attempt when the leader's process or connection dies (the server drops its
  advisory lock);
- when the lease has lapsed (the leader is paused or cut off): it terminates the old leader's
  session, which frees the lock. The lease is ``failover`` less two retry intervals (one for the
  standby's next attempt, one for the takeover itself), so either way a standby leads within
  ``failover`` of the leader's last renewal.

Each takeover increments ``epoch``. Stores fenced by this leadership
(:meth:`patwarden.state.postgres.PostgresBackend.store` with ``fence=``) check the epoch inside
every write transaction, so a paused old leader that wakes up can write nothing: its renewal
fails, and its writes raise :class:`~patwarden.rotation.ports.StateFenced`. Time is the
database server's (``now()``), one clock for every replica.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import datetime, timedelta
from typing import Any

import psycopg

from patwarden.state.pg_rows import advisory_lock
from patwarden.state.postgres import PostgresBackend, lock_key

__all__ = ["LEADER_KEY", "PostgresLeadership"]

log = logging.getLogger(__name__)
LEADER_KEY = lock_key("leader", "serve")
_MAX_RETRY = timedelta(seconds=5)


class PostgresLeadership:
    """A :class:`~patwarden.rotation.ports.Leadership` over a :class:`PostgresBackend`."""

    def __init__(self, backend: PostgresBackend, *, failover: timedelta) -> None:
        self._backend = backend
        self._failover = failover
        self._retry = min(_MAX_RETRY, failover / 10)
        self._lease = failover - 2 * self._retry
        self._lock = threading.RLock()
        self._conn: psycopg.Connection[Any] | None = None
        self._epoch: int | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self.holder = f"pid {os.getpid()} on {socket.gethostname()}"

    def __repr__(self) -> str:
        return f"PostgresLeadership({self._backend.where}, epoch={self._epoch})"

    @property
    def is_leader(self) -> bool:
        """Whether this process leads (its last renewal succeeded)."""
        return self._epoch is not None

    @property
    def epoch(self) -> int | None:
        """The epoch this process leads in, or ``None``."""
        return self._epoch

    @property
    def retry_interval(self) -> timedelta:
        """How often a standby tries to take over: a tenth of ``failover``, at most 5 s."""
        return self._retry

    @property
    def lease(self) -> timedelta:
        """How long a renewal holds the lease: ``failover`` less two retry intervals."""
        return self._lease

    def try_acquire(self, *, now: datetime) -> bool:
        """Lead if the leader is gone or its lease lapsed; renew when leading already."""
        with self._lock:
            if self._epoch is not None:
                return self._renew()
            try:
                return self._take_over(now)
            except psycopg.Error as exc:
                log.warning("leadership: %s", self._backend.error(exc))
                self._drop()
                return False

    def _session(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = self._backend.connect()
        return self._conn

    def _take_over(self, now: datetime) -> bool:
        conn = self._session()
        if not advisory_lock(conn, LEADER_KEY, 0):
            row = conn.execute(
                "SELECT backend_pid FROM patwarden_leader WHERE id = 1 AND expires_at < now()"
            ).fetchone()
            if row is None:
                return False  # a live leader
            if row[0] is not None:  # lapsed, not released: the holder hangs; end its session
                conn.execute("SELECT pg_terminate_backend(%s)", (int(row[0]),))
            if not advisory_lock(conn, LEADER_KEY, self._retry.total_seconds()):
                return False
        seconds = self._lease.total_seconds()
        with conn.transaction():
            row = conn.execute(
                "UPDATE patwarden_leader SET epoch = epoch + 1, holder = %s,"
                " backend_pid = pg_backend_pid(), since = %s,"
                " expires_at = now() + make_interval(secs => %s) WHERE id = 1 RETURNING epoch",
                (self.holder, now.isoformat(), seconds),
            ).fetchone()
        if row is None:
            return False
        self._epoch = int(row[0])
        self._stop.clear()
        self._renewer = threading.Thread(
            target=self._renew_loop, name="patwarden-leader-lease", daemon=True
        )
        self._renewer.start()
        return True

    def _renew(self) -> bool:
        epoch = self._epoch
        if epoch is None:
            return False
        try:
            cursor = self._session().execute(
                "UPDATE patwarden_leader SET expires_at = now() + make_interval(secs => %s)"
                " WHERE id = 1 AND epoch = %s",
                (self._lease.total_seconds(), epoch),
            )
            if cursor.rowcount == 1:
                return True
        except psycopg.Error as exc:
            log.warning("leadership: %s", self._backend.error(exc))
        self._drop()
        return False

    def _renew_loop(self) -> None:
        interval = self._lease.total_seconds() / 3
        while not self._stop.wait(interval):
            with self._lock:
                if self._epoch is None or not self._renew():
                    return

    def _drop(self) -> None:
        self._epoch = None
        self._stop.set()
        if self._conn is not None:
            self._conn.close()  # frees the advisory lock
            self._conn = None

    def describe_holder(self) -> str:
        """``pid 1234 on host-a since … (epoch 7)``, or ``nobody``."""
        try:
            with self._backend.pool.connection() as conn:
                row = conn.execute(
                    "SELECT holder, since, epoch FROM patwarden_leader WHERE id = 1"
                ).fetchone()
        except psycopg.Error:
            return "another process"
        if row is None or row[0] is None:
            return "nobody"
        return f"{row[0]} since {row[1]} (epoch {row[2]})"

    def release(self) -> None:
        """Give up leadership now: end the lease and free the lock."""
        with self._lock:
            epoch = self._epoch
            if epoch is not None and self._conn is not None and not self._conn.closed:
                try:
                    self._conn.execute(
                        "UPDATE patwarden_leader SET expires_at = now(), holder = NULL,"
                        " backend_pid = NULL WHERE id = 1 AND epoch = %s",
                        (epoch,),
                    )
                    self._conn.execute("SELECT pg_advisory_unlock(%s)", (LEADER_KEY,))
                except psycopg.Error as exc:
                    log.warning("leadership: %s", self._backend.error(exc))
            self._drop()
