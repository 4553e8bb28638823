"""The default state store: one SQLite file (WAL, mode 0600) plus per-token lock files beside it.

Holds token state, the rotation journal (every step of every operation) and an append-only audit
log; never a secret. The schema is versioned: ``schema_version`` holds the version and
:data:`patwarden.state.sqlite_schema.MIGRATIONS` the ordered functions that bring an older file
up to date. A file written by a newer patwarden is refused rather than damaged.

Concurrency: every write is one ``BEGIN IMMEDIATE`` transaction (SQLite serialises writers across
processes); the connections of one process (fleet worker threads) hand their writes to one
:class:`~patwarden.state.sqlite_commit.GroupCommitter` per file, which commits the writes waiting
at the same moment together, instead of each thread contending through SQLite's sleep-and-retry
busy handler and syncing on its own. Rotating a token is guarded by a per-token lock file in
``<state file>.locks/`` (:mod:`patwarden.state.token_locks`): concurrent runs never rotate a token
twice.

Durability: a journal record that precedes an external action is durable before the action runs.
The engine journals a step and then performs its action, so :meth:`SqliteStateStore.record` of an
operation that is not finished returns only once committed with ``synchronous = FULL`` (the WAL is
synced, and with it every earlier commit); everything else (token state, audit, finished
operations) commits with ``NORMAL``: safe against a crash of the process, synced by the next full
commit or checkpoint.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import stat
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from patwarden.domain.models import AuditRecord, JournalEntry, ManagedTokenState
from patwarden.domain.operation import Operation
from patwarden.errors import StateError
from patwarden.sinks import safe_files
from patwarden.state import sqlite_commit, sqlite_schema, token_locks
from patwarden.state.audit_query import AuditQuery
from patwarden.state.codec import (
    StateCorrupt,
    decode_operation,
    decode_token,
    encode_operation,
    encode_token,
    iso,
    parse_iso,
)
from patwarden.state.sqlite_reads import Reads
from patwarden.state.sqlite_schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "SqliteStateStore", "StateCorrupt"]

_DOCS = "https://github.com/patwarden/patwarden/blob/main/docs/rotation.md#state"
_RESTORE_HINT = "Restore it from a backup, or move it aside and run `patwarden adopt`."


_Executes = sqlite3.Connection | sqlite_commit.Statements


def _create_private(path: Path) -> None:
    """Create ``path`` (and its directory) readable by the owner only, if it does not exist.

    An existing file is never opened here: closing *any* descriptor of a file drops every POSIX
    lock this process holds on it, including the SQLite locks of the other connections (fleet
    workers in other threads), which lets another process write at the same time.
    """
    safe_files.ensure_private_directory(path.parent, purpose="state directory")
    flags = os.O_CREAT | os.O_EXCL | os.O_RDWR | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        if path.is_symlink():
            raise OSError(errno.ELOOP, "the state file is a symbolic link", str(path)) from None
        if stat.S_IMODE(path.stat().st_mode) != 0o600:
            path.chmod(0o600)
        return
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


class SqliteStateStore:
    """A :class:`~patwarden.rotation.ports.StateStore` in one SQLite file.

    Raises (from the constructor):
        StateError: the file cannot be opened, is not a state database, or is from a newer
            patwarden.
    """

    def __init__(self, *, path: str | os.PathLike[str], now: Callable[[], datetime]) -> None:
        self.path = Path(path)
        self._now = now
        self._locks_dir = self.path.with_name(self.path.name + ".locks")
        try:
            _create_private(self.path)
            self._conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(
                f"Cannot open the state file {self.path}: {exc}.",
                hint="Check that the directory exists and is writable by this user.",
                docs=_DOCS,
            ) from None
        self._committer: sqlite_commit.GroupCommitter | None = None
        self._reads = Reads()  # decoded records, the locked token's reads (sqlite_reads)
        try:
            self._conn.execute("PRAGMA busy_timeout = 30000")
            # Every fleet worker has a connection: SQLite's 2 MB page cache each adds up (the
            # file is in the OS cache anyway).
            self._conn.execute("PRAGMA cache_size = -256")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._migrate()
            self._committer = sqlite_commit.acquire(self.path)
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise StateError(
                f"The state file {self.path} is not a patwarden state database or is damaged "
                f"({exc}).",
                hint=_RESTORE_HINT,
                docs=_DOCS,
            ) from None
        except StateError:
            self._conn.close()
            raise

    # --- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database connection."""
        committer, self._committer = self._committer, None
        if committer is not None:
            sqlite_commit.release(committer)
        self._conn.close()

    def __enter__(self) -> SqliteStateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    @contextmanager
    def _grouped(self, *, durable: bool) -> Iterator[sqlite_commit.Statements]:
        """Collect one write's statements, then commit them with the other threads' writes."""
        statements = sqlite_commit.Statements()
        yield statements
        if self._committer is None:
            raise StateError(f"The state store {self.path} is closed.")  # a programming error
        self._committer.submit(statements.items, durable=durable)

    def _migrate(self) -> None:
        try:  # the usual case, a current file: a read (every fleet worker opens a store)
            row = self._conn.execute("SELECT version FROM schema_version").fetchone()
        except sqlite3.OperationalError:
            row = None  # a new file (or a problem the write below reports)
        if row is not None and row[0] == SCHEMA_VERSION:
            return
        with self._write() as conn:
            sqlite_schema.upgrade(conn, path=self.path, docs=_DOCS)

    def schema_version(self) -> int:
        """Return the schema version of the open file."""
        row = self._conn.execute("SELECT version FROM schema_version").fetchone()
        return int(row[0])

    # --- tokens --------------------------------------------------------------------------------

    def load_token(self, name: str) -> ManagedTokenState | None:
        """Return the state of token ``name``, or ``None`` if it was never managed."""
        return self._reads.token(name, lambda: self._load_token(name))

    def _load_token(self, name: str) -> ManagedTokenState | None:
        row = self._conn.execute("SELECT record FROM tokens WHERE name = ?", (name,)).fetchone()
        return None if row is None else self._reads.decode(row[0], decode_token, _loads)

    def tokens(self) -> Sequence[ManagedTokenState]:
        """Return the state of every managed token, by name."""
        rows = self._conn.execute("SELECT record FROM tokens ORDER BY name").fetchall()
        return [self._reads.decode(row[0], decode_token, _loads) for row in rows]

    def save_token(self, state: ManagedTokenState, *, audit: Sequence[AuditRecord] = ()) -> None:
        """Replace the state of ``state.token_name`` and append ``audit``, in one transaction."""
        self._reads.writing(state.token_name, state=True)
        with self._grouped(durable=False) as conn:
            written = self._put_token(conn, state)
            for record in audit:
                self._put_audit(conn, record)
        self._reads.wrote_state(state.token_name, written)

    def _put_token(self, conn: _Executes, state: ManagedTokenState) -> ManagedTokenState:
        """Queue the write of *state*; returns the state as it will read back."""
        current, previous = state.current, state.previous
        text = json.dumps(encode_token(state))
        conn.execute(
            "INSERT OR REPLACE INTO tokens VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                state.token_name,
                state.organization,
                current and current.authorization_id,
                current and iso(current.valid_from),
                current and iso(current.valid_to),
                previous and previous.authorization_id,
                previous and iso(previous.valid_to),
                text,
                iso(self._now()),
            ),
        )
        return self._reads.decode(text, decode_token, _loads)

    # --- operations and the journal ------------------------------------------------------------

    def load_operation(self, operation_id: str) -> Operation | None:
        """Return operation ``operation_id`` as last journaled, or ``None``."""
        row = self._conn.execute(
            "SELECT record FROM operations WHERE operation_id = ?", (operation_id,)
        ).fetchone()
        return None if row is None else self._reads.decode(row[0], decode_operation, _loads)

    def operations(self, token_name: str, *, unfinished: bool = False) -> Sequence[Operation]:
        """Return the operations of ``token_name``, oldest first (only unfinished ones if asked)."""
        sql = "SELECT record FROM operations WHERE token_name = ?"
        if unfinished:
            sql += " AND finished = 0"
        sql += " ORDER BY started_at, rowid"

        def read() -> tuple[Operation, ...]:
            rows = self._conn.execute(sql, (token_name,)).fetchall()
            return tuple(self._reads.decode(row[0], decode_operation, _loads) for row in rows)

        return list(self._reads.operations(token_name, unfinished, read))

    def record(
        self,
        op: Operation,
        *,
        token: ManagedTokenState | None = None,
        audit: Sequence[AuditRecord] = (),
    ) -> None:
        """Persist ``op`` and journal its step (with ``token`` and ``audit``) in one transaction;
        durable on return unless the operation is finished (its next action may then run)."""
        now = iso(self._now())
        outcome = None if op.outcome is None else op.outcome.value
        self._reads.writing(op.token_name, state=token is not None, operations=True)
        written = None
        with self._grouped(durable=not op.step.is_terminal) as conn:
            conn.execute(
                "INSERT OR REPLACE INTO operations VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    op.operation_id,
                    op.token_name,
                    op.step.value,
                    outcome,
                    int(op.step.is_terminal),
                    iso(op.started_at),
                    now,
                    json.dumps(encode_operation(op)),
                ),
            )
            conn.execute(
                "INSERT INTO journal (operation_id, token_name, step, outcome, reason, at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (op.operation_id, op.token_name, op.step.value, outcome, op.reason, now),
            )
            if token is not None:
                written = self._put_token(conn, token)
            for record in audit:
                self._put_audit(conn, record)
        if written is not None:
            self._reads.wrote_state(written.token_name, written)

    def journal(self, operation_id: str) -> Sequence[JournalEntry]:
        """Return the journaled steps of ``operation_id`` in order."""
        rows = self._conn.execute(
            "SELECT seq, operation_id, token_name, step, outcome, at, reason FROM journal"
            " WHERE operation_id = ? ORDER BY seq",
            (operation_id,),
        ).fetchall()
        return [
            JournalEntry(
                seq=seq,
                operation_id=op_id,
                token_name=token,
                step=step,
                outcome=outcome,
                at=parse_iso(at, field="journal.at"),
                reason=reason,
            )
            for seq, op_id, token, step, outcome, at, reason in rows
        ]

    # --- audit ---------------------------------------------------------------------------------

    def append_audit(self, record: AuditRecord) -> None:
        """Append one record to the audit log."""
        with self._grouped(durable=False) as conn:
            self._put_audit(conn, record)

    def _put_audit(self, conn: _Executes, record: AuditRecord) -> None:
        conn.execute(
            "INSERT INTO audit (at, kind, token_name, operation_id, authorization_id, detail)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                iso(record.at),
                record.kind,
                record.token_name,
                record.operation_id,
                record.authorization_id,
                json.dumps(dict(record.detail)),
            ),
        )

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
        sql, params = query.sql("audit", "?")
        cursor = self._conn.execute(sql, params)
        try:
            return iter(query.collect(cursor.fetchmany, _audit_record))
        finally:
            cursor.close()

    # --- locks ---------------------------------------------------------------------------------

    def token_lock(self, name: str, *, timeout: float) -> AbstractContextManager[None]:
        """Return a context manager holding the cross-process lock on token ``name``.

        Raises:
            StateLocked: another run held the lock for longer than ``timeout`` seconds.
        """
        return self._locked(name, timeout=timeout)

    @contextmanager
    def _locked(self, name: str, *, timeout: float) -> Iterator[None]:
        with token_locks.token_lock(self._locks_dir, name, timeout=timeout, where=self.path):
            self._reads.hold(name)  # no other run changes the token's rows while we hold it
            try:
                yield
            finally:
                self._reads.hold(None)


def _audit_record(row: Sequence[Any]) -> AuditRecord:
    seq, at, kind, token, op_id, pat_id, detail = row
    items = _loads(detail)
    if not isinstance(items, dict):
        raise StateCorrupt(f"Audit record {seq} has an unreadable detail.")
    return AuditRecord(
        seq=seq,
        at=parse_iso(at, field="audit.at"),
        kind=kind,
        token_name=token,
        operation_id=op_id,
        authorization_id=pat_id,
        detail=tuple(items.items()),
    )


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise StateCorrupt(
            "The state store has a record that is not valid JSON.",
            hint=_RESTORE_HINT,
        ) from None
