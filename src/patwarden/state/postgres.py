"""The PostgreSQL state store: shared by every machine and ``serve`` replica that points at it.

:class:`PostgresBackend` owns the connection pool (psycopg 3 + psycopg_pool) and migrates the
schema (:mod:`patwarden.state.pg_schema`) when it opens; every :class:`PostgresStateStore` it
hands out is a cheap view over that pool (one per thread, like the SQLite store). Per-token locks
are session advisory locks on a connection of their own, so a run that dies releases them at
once. A store *fenced* by a :class:`~patwarden.rotation.ports.Leadership` checks, in the same
transaction as every write, that the leader epoch it acts in is still the current one, and
stamps journal entries with it; otherwise it raises
:class:`~patwarden.rotation.ports.StateFenced` and writes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg_pool

from patwarden.domain.models import AuditRecord, JournalEntry, ManagedTokenState
from patwarden.domain.operation import Operation
from patwarden.errors import StateError
from patwarden.rotation.ports import Leadership, StateFenced, StateLocked
from patwarden.secret import Secret
from patwarden.state.audit_query import AuditQuery
from patwarden.state.codec import decode_operation, decode_token, encode_token, iso
from patwarden.state.dump import StateDump
from patwarden.state.pg_rows import (
    advisory_lock,
    audit_record,
    journal_entry,
    loads,
    put_audit,
    put_operation,
)
from patwarden.state.pg_schema import migrate

__all__ = ["PostgresBackend", "PostgresStateStore", "lock_key", "safe_url"]

_DOCS = "https://github.com/patwarden/patwarden/blob/main/docs/state.md#postgresql"


def safe_url(url: str) -> str:
    """*url* without a password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def lock_key(kind: str, name: str) -> int:
    """A signed 64-bit advisory-lock key for *name* (``kind`` keeps the key spaces apart)."""
    digest = hashlib.sha256(f"patwarden:{kind}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresBackend:
    """The pool and settings of one PostgreSQL state; build stores with :meth:`store`.

    Raises (from the constructor):
        StateError: the server cannot be reached, refuses us, or a newer patwarden wrote it.
    """

    def __init__(
        self,
        *,
        url: str,
        password: Secret | None = None,
        pool_size: int = 4,
        now: Callable[[], datetime],
    ) -> None:
        self.url = url
        self.where = safe_url(url)
        self._now = now
        self._kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": 10}
        if password is not None:
            self._kwargs["password"] = password.reveal()
        try:
            with self.connect() as conn:
                migrate(conn, where=self.where)
            self.pool = psycopg_pool.ConnectionPool(
                url, kwargs=self._kwargs, min_size=1, max_size=pool_size, open=True, timeout=30
            )
        except psycopg.Error as exc:
            raise self.error(exc) from None

    def error(self, exc: BaseException) -> StateError:
        """A :class:`StateError` for a database failure (secret-free)."""
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return StateError(
            f"The PostgreSQL state {self.where} failed: {first}.",
            hint="Check that the server is up, reachable, and that the role may use the database.",
            docs=_DOCS,
        )

    def connect(self) -> psycopg.Connection[Any]:
        """A new connection of its own (locks and leadership hold one for their lifetime).

        Raises:
            psycopg.Error: the server refused or could not be reached.
        """
        return psycopg.connect(self.url, **self._kwargs)

    def store(self, *, fence: Leadership | None = None) -> PostgresStateStore:
        """A state store over this backend's pool (close it when done; the pool stays)."""
        return PostgresStateStore(self, now=self._now, fence=fence)

    def close(self) -> None:
        """Close the pool."""
        self.pool.close()


class PostgresStateStore:
    """A :class:`~patwarden.rotation.ports.StateStore` in PostgreSQL (see the module doc)."""

    def __init__(
        self, backend: PostgresBackend, *, now: Callable[[], datetime], fence: Leadership | None
    ) -> None:
        self.backend = backend
        self.path = backend.where  # what messages call "the state"
        self._now = now
        self._fence = fence

    def close(self) -> None:
        """Nothing to close: connections go back to the backend's pool after every call."""

    def __enter__(self) -> PostgresStateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _read(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self.backend.pool.connection() as conn:
                yield conn
        except psycopg.Error as exc:
            raise self.backend.error(exc) from None

    @contextmanager
    def _write(self) -> Iterator[tuple[psycopg.Connection[Any], int | None]]:
        try:
            with self.backend.pool.connection() as conn, conn.transaction():
                yield conn, self._check_fence(conn)
        except psycopg.Error as exc:
            raise self.backend.error(exc) from None

    def _check_fence(self, conn: psycopg.Connection[Any]) -> int | None:
        if self._fence is None:
            return None
        epoch = self._fence.epoch
        row = conn.execute("SELECT epoch FROM patwarden_leader WHERE id = 1 FOR SHARE").fetchone()
        current = None if row is None else int(row[0])
        if epoch is None or current != epoch:
            raise StateFenced(
                f"This replica no longer leads the state {self.path} (it acted in epoch {epoch}, "
                f"the current epoch is {current}); nothing was written.",
                hint="Another replica took over; this one stands by.",
                docs=_DOCS,
            )
        return epoch

    # --- tokens --------------------------------------------------------------------------------

    def load_token(self, name: str) -> ManagedTokenState | None:
        """Return the state of token ``name``, or ``None`` if it was never managed."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT record FROM patwarden_tokens WHERE name = %s", (name,)
            ).fetchone()
        return None if row is None else decode_token(loads(row[0]))

    def tokens(self) -> Sequence[ManagedTokenState]:
        """Return the state of every managed token, by name."""
        with self._read() as conn:
            rows = conn.execute("SELECT record FROM patwarden_tokens ORDER BY name").fetchall()
        return [decode_token(loads(row[0])) for row in rows]

    def save_token(self, state: ManagedTokenState, *, audit: Sequence[AuditRecord] = ()) -> None:
        """Replace the state of ``state.token_name`` and append ``audit``, in one transaction."""
        with self._write() as (conn, _epoch):
            self._put_token(conn, state)
            for record in audit:
                put_audit(conn, record)

    def _put_token(self, conn: psycopg.Connection[Any], state: ManagedTokenState) -> None:
        conn.execute(
            "INSERT INTO patwarden_tokens VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO UPDATE"
            " SET organization = EXCLUDED.organization, record = EXCLUDED.record,"
            " updated_at = EXCLUDED.updated_at",
            (state.token_name, state.organization, json.dumps(encode_token(state)), self._iso()),
        )

    def _iso(self) -> str:
        return iso(self._now())

    # --- operations and the journal ------------------------------------------------------------

    def load_operation(self, operation_id: str) -> Operation | None:
        """Return operation ``operation_id`` as last journaled, or ``None``."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT record FROM patwarden_operations WHERE operation_id = %s", (operation_id,)
            ).fetchone()
        return None if row is None else decode_operation(loads(row[0]))

    def operations(self, token_name: str, *, unfinished: bool = False) -> Sequence[Operation]:
        """Return the operations of ``token_name``, oldest first (only unfinished ones if asked)."""
        sql = "SELECT record FROM patwarden_operations WHERE token_name = %s"
        if unfinished:
            sql += " AND NOT finished"
        with self._read() as conn:
            rows = conn.execute(sql + " ORDER BY started_at, created", (token_name,)).fetchall()
        return [decode_operation(loads(row[0])) for row in rows]

    def record(
        self,
        op: Operation,
        *,
        token: ManagedTokenState | None = None,
        audit: Sequence[AuditRecord] = (),
    ) -> None:
        """Persist ``op`` and journal its step (with ``token`` and ``audit``) in one transaction.

        Raises:
            StateFenced: the store is fenced and its leader epoch is no longer current.
        """
        now = self._iso()
        outcome = None if op.outcome is None else op.outcome.value
        with self._write() as (conn, epoch):
            put_operation(conn, op, updated_at=now)
            conn.execute(
                "INSERT INTO patwarden_journal (operation_id, token_name, step, outcome, reason,"
                " at, epoch) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (op.operation_id, op.token_name, op.step.value, outcome, op.reason, now, epoch),
            )
            if token is not None:
                self._put_token(conn, token)
            for record in audit:
                put_audit(conn, record)

    def journal(self, operation_id: str) -> Sequence[JournalEntry]:
        """Return the journaled steps of ``operation_id`` in order."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT seq, operation_id, token_name, step, outcome, at, reason"
                " FROM patwarden_journal WHERE operation_id = %s ORDER BY seq",
                (operation_id,),
            ).fetchall()
        return [journal_entry(row) for row in rows]

    def journal_epochs(self, operation_id: str) -> list[int | None]:
        """The leader epoch each journal entry of ``operation_id`` was written in (in order)."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT epoch FROM patwarden_journal WHERE operation_id = %s ORDER BY seq",
                (operation_id,),
            ).fetchall()
        return [None if r[0] is None else int(r[0]) for r in rows]

    # --- audit ---------------------------------------------------------------------------------

    def append_audit(self, record: AuditRecord) -> None:
        """Append one record to the audit log."""
        with self._write() as (conn, _epoch):
            put_audit(conn, record)

    def audit(
        self,
        since: datetime | None = None,
        *,
        kinds: Collection[str] = (),
        tokens: Collection[str] = (),
        limit: int | None = None,
        newest_first: bool = False,
    ) -> Iterator[AuditRecord]:
        """Yield the audit records at or after ``since`` of ``kinds`` and ``tokens`` (each: all
        if empty), oldest first (newest first if asked), at most ``limit``: one indexed query."""
        query = AuditQuery.of(
            since, kinds=kinds, tokens=tokens, limit=limit, newest_first=newest_first
        )
        sql, params = query.sql("patwarden_audit", "%s")
        with self._read() as conn:
            cursor = conn.execute(sql, params)
            found = query.collect(cursor.fetchmany, audit_record)
        return iter(found)

    # --- locks ---------------------------------------------------------------------------------

    def token_lock(self, name: str, *, timeout: float) -> AbstractContextManager[None]:
        """Return a context manager holding the cross-process lock on token ``name``.

        Raises:
            StateLocked: another run held the lock for longer than ``timeout`` seconds.
        """
        return self._lock(name, timeout=timeout)

    @contextmanager
    def _lock(self, name: str, *, timeout: float) -> Iterator[None]:
        key = lock_key("token", name)
        try:
            conn = self.backend.connect()
        except psycopg.Error as exc:
            raise self.backend.error(exc) from None
        try:
            if not advisory_lock(conn, key, timeout):
                raise StateLocked(
                    f"Token {name!r} is locked by another patwarden run on {self.path}.",
                    hint="Let that run finish; this run left the token alone.",
                )
            yield
        except psycopg.Error as exc:
            raise self.backend.error(exc) from None
        finally:
            conn.close()  # the session's advisory lock ends with it

    # --- the whole state -----------------------------------------------------------------------

    def export_dump(self) -> StateDump:
        """Every token, operation, journal entry and audit record, in order."""
        with self._read() as conn:
            tokens = conn.execute("SELECT record FROM patwarden_tokens ORDER BY name").fetchall()
            ops = conn.execute(
                "SELECT record FROM patwarden_operations ORDER BY started_at, created"
            ).fetchall()
            journal = conn.execute(
                "SELECT seq, operation_id, token_name, step, outcome, at, reason"
                " FROM patwarden_journal ORDER BY seq"
            ).fetchall()
        return StateDump(
            tokens=tuple(decode_token(loads(r[0])) for r in tokens),
            operations=tuple(decode_operation(loads(r[0])) for r in ops),
            journal=tuple(journal_entry(r) for r in journal),
            audit=tuple(self.audit()),
        )

    def import_dump(self, dump: StateDump) -> None:
        """Copy *dump* into this (empty) state in one transaction, keeping order and times.

        Raises:
            StateError: the state is not empty.
        """
        with self._write() as (conn, epoch):
            row = conn.execute(
                "SELECT (SELECT count(*) FROM patwarden_tokens) + (SELECT count(*) FROM"
                " patwarden_journal) + (SELECT count(*) FROM patwarden_audit)"
            ).fetchone()
            if row is not None and int(row[0]) > 0:
                raise StateError(
                    f"The PostgreSQL state {self.path} is not empty; migrate into an empty one.",
                    hint="Create a new database for patwarden, or point --to at an empty one.",
                )
            for op in dump.operations:
                put_operation(conn, op, updated_at=iso(op.started_at))
            for token in dump.tokens:
                self._put_token(conn, token)
            for entry in dump.journal:
                conn.execute(
                    "INSERT INTO patwarden_journal (operation_id, token_name, step, outcome,"
                    " reason, at, epoch) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    (
                        entry.operation_id,
                        entry.token_name,
                        entry.step,
                        entry.outcome,
                        entry.reason,
                        iso(entry.at),
                        epoch,
                    ),
                )
            for record in dump.audit:
                put_audit(conn, record)
