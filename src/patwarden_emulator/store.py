"""The emulator's persistent state: one SQLite database in the state directory.

Each feature module owns its tables and creates them through :meth:`Store.ensure_schema`. All access
is serialised by one lock: the emulator is a test fixture, not a database benchmark, and SQLite on
loopback comfortably serves the few thousand requests per second the benchmarks need.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

Params = Sequence[Any] | dict[str, Any]

_META_SCHEMA = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"


def _create_private(path: Path) -> None:
    """Make the database file 0600 before SQLite opens it (it holds every issued secret).

    SQLite gives its -wal and -shm files the database file's mode, so they are 0600 too.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


class Store:
    """A thread-safe wrapper around one SQLite connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        _create_private(path)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self.ensure_schema(_META_SCHEMA)

    def ensure_schema(self, script: str) -> None:
        """Run a ``CREATE TABLE IF NOT EXISTS`` script (idempotent)."""
        with self._lock:
            self._db.executescript(script)

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement and return the number of rows it changed."""
        with self._lock:
            return self._db.execute(sql, params).rowcount

    def insert(self, sql: str, params: Params = ()) -> int:
        """Run one INSERT and return the new row id."""
        with self._lock:
            row_id = self._db.execute(sql, params).lastrowid
            return int(row_id or 0)

    def query(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        """Return all rows of a query."""
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        """Return the first row of a query, or None."""
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(sql, params).fetchone()
            return row

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """Group statements atomically (the lock is held throughout)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def get_meta(self, key: str) -> str | None:
        """Read a value from the key/value table."""
        row = self.one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        """Write a value to the key/value table."""
        self.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def meta_or_create(self, key: str, factory: Any) -> str:
        """Return the stored value for *key*, creating it with ``factory()`` the first time."""
        with self._lock:
            value = self.get_meta(key)
            if value is None:
                value = str(factory())
                self.set_meta(key, value)
            return value

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()
