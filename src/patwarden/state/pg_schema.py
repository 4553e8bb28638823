"""The PostgreSQL state's schema and its migrations (``patwarden_schema`` holds the version).

The journal and the audit log are append-only twice over: triggers refuse ``UPDATE``, ``DELETE``
and ``TRUNCATE`` on them for every role (the owner included), and ``PUBLIC`` holds no such
privilege. ``patwarden_leader`` is the one lease row of ``serve`` replicas (its ``epoch`` fences
the journal; see :mod:`patwarden.state.pg_leader`). Migrations run in one transaction under an
advisory lock, so replicas starting together migrate once.
"""

from __future__ import annotations

from typing import Any

from patwarden.errors import StateError

__all__ = ["MIGRATE_LOCK_KEY", "SCHEMA_VERSION", "migrate"]

MIGRATE_LOCK_KEY = 0x7061_7477_6D69_6772  # "patwmigr": the migration's advisory lock

_APPEND_ONLY = """
CREATE FUNCTION patwarden_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the % is append-only', TG_ARGV[0] USING ERRCODE = 'insufficient_privilege';
END $$
"""

_V1 = (
    "CREATE TABLE patwarden_tokens (name text PRIMARY KEY, organization text NOT NULL,"
    " record text NOT NULL, updated_at text NOT NULL)",
    "CREATE TABLE patwarden_operations (operation_id text PRIMARY KEY,"
    " token_name text NOT NULL, step text NOT NULL, outcome text, finished boolean NOT NULL,"
    " started_at text NOT NULL, created bigserial, updated_at text NOT NULL,"
    " record text NOT NULL)",
    "CREATE INDEX patwarden_operations_by_token ON patwarden_operations (token_name, finished)",
    "CREATE TABLE patwarden_journal (seq bigserial PRIMARY KEY, operation_id text NOT NULL,"
    " token_name text NOT NULL, step text NOT NULL, outcome text, reason text,"
    " at text NOT NULL, epoch bigint)",
    "CREATE INDEX patwarden_journal_by_operation ON patwarden_journal (operation_id, seq)",
    "CREATE TABLE patwarden_audit (seq bigserial PRIMARY KEY, at text NOT NULL,"
    " kind text NOT NULL, token_name text, operation_id text, authorization_id text,"
    " detail text NOT NULL)",
    _APPEND_ONLY,
    *(
        f"CREATE TRIGGER patwarden_{table}_no_change BEFORE UPDATE OR DELETE ON patwarden_{table}"
        f" FOR EACH ROW EXECUTE FUNCTION patwarden_append_only('{table} log')"
        for table in ("journal", "audit")
    ),
    *(
        f"CREATE TRIGGER patwarden_{table}_no_truncate BEFORE TRUNCATE ON patwarden_{table}"
        f" FOR EACH STATEMENT EXECUTE FUNCTION patwarden_append_only('{table} log')"
        for table in ("journal", "audit")
    ),
    "REVOKE UPDATE, DELETE, TRUNCATE ON patwarden_journal, patwarden_audit FROM PUBLIC",
    "CREATE TABLE patwarden_leader (id integer PRIMARY KEY CHECK (id = 1),"
    " epoch bigint NOT NULL, holder text, backend_pid integer, since text,"
    " expires_at timestamptz)",
    "INSERT INTO patwarden_leader (id, epoch) VALUES (1, 0)",
)

# Version 2: indexes for the bounded audit reads (a kind's or a token's records, newest first;
# patwarden.state.audit_query) and for the time filter.
_V2 = (
    "CREATE INDEX IF NOT EXISTS patwarden_audit_by_kind ON patwarden_audit (kind, seq)",
    "CREATE INDEX IF NOT EXISTS patwarden_audit_by_token ON patwarden_audit (token_name, seq)",
    "CREATE INDEX IF NOT EXISTS patwarden_audit_by_time ON patwarden_audit (at)",
)

# Ordered: _MIGRATIONS[n] brings schema version n to n + 1. Append; never edit a released one.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2)
SCHEMA_VERSION = len(_MIGRATIONS)


def migrate(conn: Any, *, where: str) -> int:
    """Bring the database behind *conn* (autocommit) to :data:`SCHEMA_VERSION`; return it.

    Raises:
        StateError: a newer patwarden wrote the schema.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK_KEY,))
        conn.execute("CREATE TABLE IF NOT EXISTS patwarden_schema (version integer NOT NULL)")
        row = conn.execute("SELECT version FROM patwarden_schema").fetchone()
        version = 0 if row is None else int(row[0])
        if version > SCHEMA_VERSION:
            raise StateError(
                f"The state database {where} has schema version {version}, but this patwarden "
                f"knows only up to {SCHEMA_VERSION}; a newer patwarden wrote it.",
                hint="Upgrade patwarden (or point this one at a different database).",
            )
        for statements in _MIGRATIONS[version:]:
            for statement in statements:
                conn.execute(statement)
        if row is None:
            conn.execute("INSERT INTO patwarden_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
        elif version < SCHEMA_VERSION:
            conn.execute("UPDATE patwarden_schema SET version = %s", (SCHEMA_VERSION,))
    return SCHEMA_VERSION
