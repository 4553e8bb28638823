"""Group commit for the SQLite state store: the writes of a process's threads share transactions.

A fleet run has dozens of worker threads, each journaling every step of its token before acting,
and a journal record that precedes an external action must be durable (synced to disk) before the
action runs. One sync per record, one writer at a time, makes the disk's sync latency the limit
of the whole run (about 3 ms here: ~330 records per second for every worker together).

:class:`GroupCommitter` is shared by every connection of this process to one state file. A
thread hands it its statements (:meth:`GroupCommitter.submit`) and waits; whichever thread
commits next takes every batch waiting at that moment and applies them in one ``BEGIN IMMEDIATE``
transaction, synced (``synchronous = FULL``) when any batch asked for durability. When a statement
fails, the group is rolled back and each batch committed on its own: only the failing batch's
thread gets the error. No thread returns before its batch is committed, so the durability rule
holds batch by batch, with one sync per group instead of one per record. Other processes are
still serialised by SQLite's own lock.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["GroupCommitter", "Statements", "acquire", "release"]

Statement = tuple[str, Sequence[Any]]


class Statements:
    """Collects the statements of one write (it has the ``execute`` the record helpers call)."""

    def __init__(self) -> None:
        self.items: list[Statement] = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Queue one statement."""
        self.items.append((sql, params))


@dataclass(eq=False)
class _Batch:
    statements: Sequence[Statement]
    durable: bool
    done: bool = False
    error: BaseException | None = field(default=None, repr=False)


class GroupCommitter:
    """Commits the batches of every thread of this process to one state file (see the module)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Used only under _commit_lock, by whichever thread commits: not bound to one thread.
        self._conn = sqlite3.connect(
            path, isolation_level=None, timeout=30.0, check_same_thread=False
        )
        self._conn.execute("PRAGMA busy_timeout = 30000")
        self._conn.execute("PRAGMA foreign_keys = ON")
        self._synchronous = ""
        self._mutex = threading.Lock()  # guards _pending
        self._commit_lock = threading.Lock()  # one committing thread at a time
        self._pending: list[_Batch] = []
        self.users = 0
        self.transactions = 0  # committed transactions (each may hold several batches)

    def submit(self, statements: Sequence[Statement], *, durable: bool) -> None:
        """Apply *statements* atomically; on return they are committed (and synced if *durable*).

        Raises:
            sqlite3.Error: the statements failed (nothing of them was applied) or the commit did.
        """
        batch = _Batch(statements, durable)
        with self._mutex:
            self._pending.append(batch)
        with self._commit_lock:
            if not batch.done:
                with self._mutex:
                    batches, self._pending = self._pending, []
                self._commit(batches)
        if batch.error is not None:
            raise batch.error

    def _commit(self, batches: list[_Batch]) -> None:
        conn = self._conn
        try:
            synchronous = "FULL" if any(b.durable for b in batches) else "NORMAL"
            if synchronous != self._synchronous:
                conn.execute(f"PRAGMA synchronous = {synchronous}")
                self._synchronous = synchronous
            conn.execute("BEGIN IMMEDIATE")
        except BaseException as exc:
            _finish(batches, exc)
            raise
        try:
            failed = _apply(conn, batches)
            if failed is None:
                conn.execute("COMMIT")
                self.transactions += 1
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            _finish(batches, exc)
            raise
        if failed is None:
            _finish(batches, None)
        elif len(batches) == 1:
            batches[0].error = failed
            _finish(batches, None)
        else:
            # A statement failed: undo the group and commit each batch on its own, so that
            # only the failing one fails (rare: a batch's statements fail only on a damaged
            # file or a bug, and savepoints around every batch would cost two statements each).
            for done, batch in enumerate(batches):
                try:
                    self._commit([batch])
                except BaseException as exc:
                    _finish(batches[done + 1 :], exc)  # none is left waiting unanswered
                    raise

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()


def _apply(conn: sqlite3.Connection, batches: list[_Batch]) -> sqlite3.Error | None:
    """Run the statements of *batches* in the open transaction; on the first that fails, roll
    the transaction back and return its error."""
    try:
        for batch in batches:
            for sql, params in batch.statements:
                conn.execute(sql, params)
    except sqlite3.Error as exc:
        conn.execute("ROLLBACK")
        return exc
    return None


def _finish(batches: list[_Batch], error: BaseException | None) -> None:
    for batch in batches:
        if error is not None and batch.error is None:
            batch.error = (
                error
                if isinstance(error, sqlite3.Error)
                else sqlite3.OperationalError(f"the shared commit failed: {type(error).__name__}")
            )
        batch.done = True


_registry_lock = threading.Lock()
_committers: dict[tuple[int, str], GroupCommitter] = {}


def acquire(path: Path) -> GroupCommitter:
    """The committer of *path* for this process (opened on first use; pair with :func:`release`).

    Raises:
        sqlite3.Error: the file cannot be opened.
    """
    key = (os.getpid(), os.path.realpath(path))  # a forked child opens its own
    with _registry_lock:
        committer = _committers.get(key)
        if committer is None:
            committer = _committers[key] = GroupCommitter(path)
        committer.users += 1
        return committer


def release(committer: GroupCommitter) -> None:
    """Stop using *committer*; the last user closes it."""
    key = (os.getpid(), os.path.realpath(committer.path))
    with _registry_lock:
        committer.users -= 1
        if committer.users > 0:
            return
        if _committers.get(key) is committer:
            del _committers[key]
    committer.close()
