"""The PostgreSQL state store on a real server: schema, append-only logs, errors, locks."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from patwarden.domain.models import AuditRecord
from patwarden.errors import StateError
from patwarden.rotation.ports import StateLocked
from patwarden.secret import Secret
from patwarden.state.dump import read_sqlite
from patwarden.state.pg_schema import SCHEMA_VERSION
from patwarden.state.postgres import PostgresBackend, safe_url
from patwarden.state.sqlite import SqliteStateStore
from tests.state.test_contract import operation
from tests.support import clock
from tests.support.state_servers import PostgresServer


@pytest.fixture
def url(postgres_server: PostgresServer) -> str:
    return postgres_server.new_database()


def _backend(url: str) -> PostgresBackend:
    return PostgresBackend(url=url, now=clock.now)


def test_the_schema_is_created_once_and_versioned(url: str) -> None:
    _backend(url).close()
    _backend(url).close()  # a second start migrates nothing
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT version FROM patwarden_schema").fetchall() == [
            (SCHEMA_VERSION,)
        ]
        assert conn.execute("SELECT id, epoch FROM patwarden_leader").fetchall() == [(1, 0)]


def test_a_schema_from_a_newer_patwarden_is_refused(url: str) -> None:
    _backend(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE patwarden_schema SET version = 99")
    with pytest.raises(StateError, match=r"schema version 99.*newer patwarden"):
        _backend(url)


@pytest.mark.parametrize("table", ["patwarden_audit", "patwarden_journal"])
@pytest.mark.parametrize(
    "statement", ["UPDATE {} SET seq = seq + 100", "DELETE FROM {}", "TRUNCATE {}"]
)
def test_the_journal_and_audit_log_are_append_only(url: str, table: str, statement: str) -> None:
    backend = _backend(url)
    store = backend.store()
    store.record(operation())
    store.append_audit(AuditRecord(at=clock.now(), kind="rotated"))
    backend.close()
    with (
        psycopg.connect(url, autocommit=True) as conn,  # the owner itself
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"),
    ):
        conn.execute(statement.format(table))


def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    with pytest.raises(StateError) as info:
        PostgresBackend(
            url="postgresql://patwarden@127.0.0.1:1/patwarden",
            password=Secret("hunter2-secret"),
            now=clock.now,
        )
    assert "postgresql://patwarden@127.0.0.1:1/patwarden" in str(info.value)
    assert "hunter2" not in str(info.value) + str(info.value.hint)
    assert safe_url("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"


def test_token_locks_are_per_token_and_released_when_the_holder_goes(url: str) -> None:
    backend, other = _backend(url), _backend(url)
    try:
        holder = backend.store().token_lock("a", timeout=1)
        holder.__enter__()
        with other.store().token_lock("b", timeout=1):  # another token: free
            pass
        with pytest.raises(StateLocked), other.store().token_lock("a", timeout=0.2):
            pass
        holder.__exit__(None, None, None)
        with other.store().token_lock("a", timeout=1):
            pass
    finally:
        backend.close()
        other.close()


def test_a_migrated_sqlite_state_reads_the_same(url: str, tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with SqliteStateStore(path=path, now=clock.now) as sqlite:
        sqlite.record(operation())
        sqlite.append_audit(AuditRecord(at=clock.now(), kind="adopted", detail=(("n", 1),)))
    dump = read_sqlite(path, open_store=lambda: SqliteStateStore(path=path, now=clock.now))
    backend = _backend(url)
    try:
        backend.store().import_dump(dump)
        copied = backend.store().export_dump()
        assert copied.operations == dump.operations
        assert [(e.step, e.at) for e in copied.journal] == [(e.step, e.at) for e in dump.journal]
        assert [(r.kind, r.at, r.detail) for r in copied.audit] == [
            (r.kind, r.at, r.detail) for r in dump.audit
        ]
        with pytest.raises(StateError, match="not empty"):
            backend.store().import_dump(dump)
    finally:
        backend.close()


def test_a_version_1_database_gets_the_audit_indexes_and_keeps_its_history(url: str) -> None:
    from patwarden.state.pg_schema import _MIGRATIONS

    with psycopg.connect(url, autocommit=True) as conn:  # the database as version 1 made it
        for statement in _MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("CREATE TABLE patwarden_schema (version integer NOT NULL)")
        conn.execute("INSERT INTO patwarden_schema (version) VALUES (1)")
        conn.execute(
            "INSERT INTO patwarden_audit (at, kind, token_name, detail)"
            " VALUES (%s, 'rotated', 't', '{}')",
            (clock.now().isoformat(),),
        )
    backend = _backend(url)
    try:
        store = backend.store()
        store.append_audit(AuditRecord(at=clock.now(), kind="sign_in_ok"))
        assert [r.kind for r in store.audit(newest_first=True)] == ["sign_in_ok", "rotated"]
        assert [r.token_name for r in store.audit(tokens=["t"], limit=1)] == ["t"]
    finally:
        backend.close()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT version FROM patwarden_schema").fetchall() == [
            (SCHEMA_VERSION,)
        ]
        names = {
            name
            for (name,) in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'patwarden_audit'"
            )
        }
    assert {"patwarden_audit_by_kind", "patwarden_audit_by_token"} <= names
