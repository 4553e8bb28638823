"""The SQLite state's schema: the ordered migrations from an empty file to :data:`SCHEMA_VERSION`.

``MIGRATIONS[n]`` brings schema version n to n + 1 (the store runs them in one transaction when
it opens a file). Version 3 adds the audit log's indexes for bounded reads
(:mod:`patwarden.state.audit_query`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from patwarden.errors import StateError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "upgrade"]


def _v1(conn: sqlite3.Connection) -> None:
    """Tokens, operations, the journal and the audit log."""
    conn.execute(
        "CREATE TABLE tokens (name TEXT PRIMARY KEY, organization TEXT NOT NULL,"
        " current_authorization_id TEXT, current_valid_from TEXT, current_valid_to TEXT,"
        " previous_authorization_id TEXT, previous_valid_to TEXT,"
        " record TEXT NOT NULL, updated_at TEXT NOT NULL)"
    )
    conn.execute(
        "CREATE TABLE operations (operation_id TEXT PRIMARY KEY, token_name TEXT NOT NULL,"
        " step TEXT NOT NULL, outcome TEXT, finished INTEGER NOT NULL, started_at TEXT NOT NULL,"
        " updated_at TEXT NOT NULL, record TEXT NOT NULL)"
    )
    conn.execute("CREATE INDEX operations_by_token ON operations (token_name, finished)")
    conn.execute(
        "CREATE TABLE journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, operation_id TEXT NOT NULL,"
        " token_name TEXT NOT NULL, step TEXT NOT NULL, outcome TEXT, reason TEXT,"
        " at TEXT NOT NULL)"
    )
    conn.execute("CREATE INDEX journal_by_operation ON journal (operation_id, seq)")
    conn.execute(
        "CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,"
        " kind TEXT NOT NULL, token_name TEXT, operation_id TEXT, authorization_id TEXT,"
        " detail TEXT NOT NULL)"
    )
    conn.execute("CREATE INDEX audit_by_time ON audit (at)")
    # The audit log is append-only: the database itself refuses edits and deletions.
    for verb in ("UPDATE", "DELETE"):
        conn.execute(
            f"CREATE TRIGGER audit_no_{verb.lower()} BEFORE {verb} ON audit"
            " BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
        )


def _v2(conn: sqlite3.Connection) -> None:
    """Operations may stand at step ``revoked`` and carry ``revoked_at`` and ``untagged``.

    The records are JSON and decode without the new fields, so nothing is rewritten; the version
    bump makes an older patwarden refuse the file ("a newer patwarden wrote it") instead of
    calling an operation at the new step damaged.
    """


def _v3(conn: sqlite3.Connection) -> None:
    """Indexes for the bounded audit reads (a kind's or a token's records, newest first)."""
    conn.execute("CREATE INDEX IF NOT EXISTS audit_by_kind ON audit (kind, seq)")
    conn.execute("CREATE INDEX IF NOT EXISTS audit_by_token ON audit (token_name, seq)")


# Ordered: MIGRATIONS[n] brings schema version n to n + 1. Append; never edit a released one.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1, _v2, _v3)
SCHEMA_VERSION = len(MIGRATIONS)


def upgrade(conn: sqlite3.Connection, *, path: Path, docs: str) -> None:
    """Bring the file open on *conn* to :data:`SCHEMA_VERSION`, inside the caller's write
    transaction (a new file gets every migration).

    Raises:
        StateError: a newer patwarden wrote the file (it is left as it is).
    """
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    version = 0 if row is None else int(row[0])
    if version > SCHEMA_VERSION:
        raise StateError(
            f"The state file {path} has schema version {version}, but this "
            f"patwarden knows only up to {SCHEMA_VERSION}; a newer patwarden wrote it.",
            hint="Upgrade patwarden (or point this one at a different state file).",
            docs=docs,
        )
    for migration in MIGRATIONS[version:]:
        migration(conn)
    if row is None:
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
    elif version < SCHEMA_VERSION:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
