"""The SQLite state store on real files: permissions, schema versions, records, locks, processes."""

from __future__ import annotations

import functools
import json
import multiprocessing
import sqlite3
import stat
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from patwarden.domain.models import AuditRecord, IssuedPat, ManagedTokenState, SinkRecord
from patwarden.domain.operation import Operation, Outcome, SinkProgress, SinkStatus, Step
from patwarden.errors import StateError
from patwarden.rotation.ports import StateLocked
from patwarden.state.sqlite import SCHEMA_VERSION, SqliteStateStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _now() -> datetime:
    return T0


def _store(path: Path) -> SqliteStateStore:
    return SqliteStateStore(path=path, now=_now)


def _pat(pat_id: str = "a1") -> IssuedPat:
    return IssuedPat(
        authorization_id=pat_id,
        display_name=f"patwarden:t:{'0' * 32}",
        valid_from=T0,
        valid_to=T0 + timedelta(days=30),
        scopes=("vso.code",),
    )


def _op(step: Step = Step.PLANNED, op_id: str = "1" * 32) -> Operation:
    return Operation(
        operation_id=op_id,
        token_name="t",
        organization="contoso",
        display_name=f"patwarden:t:{op_id}",
        scopes=("vso.code",),
        requested_valid_to=T0 + timedelta(days=30),
        revoke_after=timedelta(hours=6),
        started_at=T0,
        step=step,
        previous=_pat("old"),
        new=_pat("new"),
        sinks=(
            SinkProgress(
                sink="kv",
                status=SinkStatus.WRITTEN,
                previous=SinkRecord(sink="kv", authorization_id="old", ref="v1"),
                written=SinkRecord(sink="kv", authorization_id="new", ref="v2"),
                read_back=True,
            ),
            SinkProgress(sink="file"),
        ),
        outcome=Outcome.ROTATED if step is Step.DONE else None,
        reason="why",
    )


def test_file_and_wal_are_private_to_the_owner(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "state.db"
    store = _store(path)
    store.record(_op())
    for file in (path, path.with_name("state.db-wal")):
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    with store.token_lock("t", timeout=1):
        (lock,) = path.with_name("state.db.locks").iterdir()
        assert stat.S_IMODE(lock.stat().st_mode) == 0o600
        assert stat.S_IMODE(lock.parent.stat().st_mode) == 0o700
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_existing_world_readable_file_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.touch(mode=0o644)
    path.chmod(0o644)
    _store(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_token_state_round_trips(tmp_path: Path) -> None:
    store = _store(tmp_path / "s.db")
    state = ManagedTokenState(
        token_name="t",
        organization="contoso",
        current=_pat("new"),
        previous=_pat("old"),
        revoke_at=T0 + timedelta(hours=6),
        sinks=(SinkRecord(sink="kv", authorization_id="new", ref="v2"),),
        last_operation_id="1" * 32,
        updated_at=T0,
    )
    store.save_token(state)
    assert store.load_token("t") == state
    assert store.load_token("other") is None
    assert store.tokens() == [state]
    # The queryable columns mirror the record.
    row = sqlite3.connect(tmp_path / "s.db").execute(
        "SELECT current_authorization_id, previous_authorization_id FROM tokens"
    )
    assert row.fetchone() == ("new", "old")


def test_operations_and_journal(tmp_path: Path) -> None:
    store = _store(tmp_path / "s.db")
    for step in (Step.PLANNED, Step.CREATING, Step.DONE):
        store.record(_op(step))
    store.record(_op(Step.CREATING, op_id="2" * 32))

    assert store.load_operation("1" * 32) == _op(Step.DONE)
    assert [e.step for e in store.journal("1" * 32)] == ["planned", "creating", "done"]
    assert store.journal("1" * 32)[-1].outcome == "rotated"
    assert [op.operation_id for op in store.operations("t")] == ["1" * 32, "2" * 32]
    assert [op.operation_id for op in store.operations("t", unfinished=True)] == ["2" * 32]


def test_record_writes_operation_token_and_audit_together(tmp_path: Path) -> None:
    store = _store(tmp_path / "s.db")
    state = ManagedTokenState(token_name="t", organization="contoso", current=_pat("new"))
    audit = AuditRecord(at=T0, kind="promoted", token_name="t", detail=(("sinks", 2),))
    store.record(_op(Step.PROMOTED), token=state, audit=[audit])
    assert store.load_token("t") == state
    (record,) = store.audit()
    assert record.kind == "promoted"
    assert record.to_json()["detail"] == {"sinks": 2}


def test_audit_is_append_only_and_filtered_by_time(tmp_path: Path) -> None:
    store = _store(tmp_path / "s.db")
    for hours in (0, 1, 2):
        store.append_audit(AuditRecord(at=T0 + timedelta(hours=hours), kind=f"k{hours}"))
    assert [r.kind for r in store.audit(since=T0 + timedelta(hours=1))] == ["k1", "k2"]
    assert [r.seq for r in store.audit()] == [1, 2, 3]
    conn = sqlite3.connect(tmp_path / "s.db")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit SET kind = 'x'")


def test_schema_is_versioned_and_reopening_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _store(path).close()
    store = _store(path)
    assert store.schema_version() == SCHEMA_VERSION
    rows = sqlite3.connect(path).execute("SELECT version FROM schema_version").fetchall()
    assert rows == [(SCHEMA_VERSION,)]


def test_a_version_1_file_is_migrated_and_its_operations_read_without_the_tail_fields(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    with _store(path) as store:
        store.record(_op(Step.REVOKE_PENDING))
    conn = sqlite3.connect(path)
    (record,) = conn.execute("SELECT record FROM operations").fetchone()
    old = json.loads(record)
    del old["revoked_at"], old["untagged"]  # what schema 1 wrote
    conn.execute("UPDATE operations SET record = ?", (json.dumps(old),))
    conn.execute("UPDATE schema_version SET version = 1")
    conn.commit()
    conn.close()
    with _store(path) as store:
        assert store.schema_version() == SCHEMA_VERSION == 3
        op = store.load_operation("1" * 32)
    assert op == _op(Step.REVOKE_PENDING)
    assert (op.revoked_at, op.untagged) == (None, ())


def test_a_file_made_by_the_version_1_schema_is_upgraded_and_then_rotates(tmp_path: Path) -> None:
    """The upgrade path runs on a file exactly as schema 1 made it (tables, triggers, one row)."""
    from patwarden.rotation.outcomes import OutcomeKind
    from patwarden.state.sqlite_schema import MIGRATIONS
    from tests.rotation.harness import Harness

    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    MIGRATIONS[0](conn)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version (version) VALUES (1)")
    conn.commit()
    conn.close()
    path.chmod(0o600)

    world = Harness(path=path)
    assert world.store.schema_version() == SCHEMA_VERSION
    first = world.run()
    world.advance(timedelta(days=23))
    second = world.run()
    world.settle()

    assert [first.outcomes[0].kind, second.outcomes[0].kind] == [OutcomeKind.ROTATED] * 2
    assert world.issuer.active() == {world.current_id()}
    world.store.close()
    raw = sqlite3.connect(path)
    rows = raw.execute("SELECT version FROM schema_version").fetchall()
    assert rows == [(SCHEMA_VERSION,)], "upgraded in place: one version row"
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        raw.execute("DELETE FROM audit")
    raw.close()


def test_the_tail_fields_round_trip(tmp_path: Path) -> None:
    op = replace(_op(Step.REVOKED), revoked_at=T0 + timedelta(hours=7), untagged=("kv",))
    with _store(tmp_path / "s.db") as store:
        store.record(op)
        assert store.load_operation(op.operation_id) == op


def test_newer_schema_is_refused_with_upgrade_advice(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(StateError, match="newer patwarden") as info:
        _store(path)
    assert "Upgrade patwarden" in str(info.value)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StateError, match="not a patwarden state database") as info:
        _store(path)
    assert "adopt" in str(info.value)


def test_damaged_record_is_a_state_error(tmp_path: Path) -> None:
    store = _store(tmp_path / "s.db")
    store.save_token(ManagedTokenState(token_name="t", organization="contoso"))
    conn = sqlite3.connect(tmp_path / "s.db")
    conn.execute("UPDATE tokens SET record = '{\"token_name\": 3}'")
    conn.commit()
    with pytest.raises(StateError, match="unreadable"):
        store.load_token("t")


def test_lock_times_out_with_a_state_locked_error(tmp_path: Path) -> None:
    store = _store(tmp_path / "s.db")
    other = _store(tmp_path / "s.db")
    with store.token_lock("t", timeout=1):
        with (
            pytest.raises(StateLocked, match="locked by another patwarden run"),
            other.token_lock("t", timeout=0.05),
        ):
            pass
        with other.token_lock("different", timeout=0.05):
            pass
    with other.token_lock("t", timeout=0.05):
        pass


def _claim_worker(path: str, tokens: list[str], out: multiprocessing.Queue[str]) -> None:
    """One process: claim every token whose claim row is absent, under the token lock."""
    store = SqliteStateStore(path=path, now=_now)
    for name in tokens:
        with store.token_lock(name, timeout=30):
            if store.load_token(name) is None:
                store.save_token(ManagedTokenState(token_name=name, organization="o"))
                out.put(name)
    store.close()


def test_concurrent_processes_claim_each_token_exactly_once(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    tokens = [f"token-{n}" for n in range(12)]
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[str] = ctx.Queue()
    workers = [
        ctx.Process(target=_claim_worker, args=(path, tokens[::step], out))
        for step in (1, 1, -1, -1)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    claimed = []
    while not out.empty():
        claimed.append(out.get())
    assert sorted(claimed) == sorted(tokens)


def _open_and_write_in_threads(path: str, errors: multiprocessing.Queue[str]) -> None:
    """One process: 4 threads, each opening its own store (as fleet workers do) and writing."""

    def worker() -> None:
        try:
            for _ in range(5):
                store = SqliteStateStore(path=path, now=_now)
                try:
                    store.append_audit(AuditRecord(at=T0, kind="k", token_name="t"))
                finally:
                    store.close()
        except Exception as exc:  # reported to the test through the queue
            errors.put(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_opening_the_store_keeps_the_sqlite_locks_of_other_threads(tmp_path: Path) -> None:
    """Regression: opening a store opened and closed a descriptor of the existing file, and
    closing *any* descriptor of a file drops every POSIX lock the process holds on it — those of
    SQLite connections in other threads (fleet workers) — so another process could write at the
    same time: "disk I/O error", "database is locked", a damaged state file."""
    path = tmp_path / "state.db"
    _store(path).close()
    ctx = multiprocessing.get_context("spawn")
    errors: multiprocessing.Queue[str] = ctx.Queue()
    workers = [
        ctx.Process(target=_open_and_write_in_threads, args=(str(path), errors)) for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == []
    assert [worker.exitcode for worker in workers] == [0] * 4
    with _store(path) as store:
        assert len(list(store.audit())) == 4 * 4 * 5


def _commits(store: SqliteStateStore, write: Callable[[], object]) -> list[str]:
    """The ``synchronous`` level each transaction of *write* committed with, in order."""
    levels, current = [], ["?"]

    def trace(statement: str) -> None:
        if statement.startswith("PRAGMA synchronous"):
            current[0] = statement.split("=")[1].strip()
        elif statement == "COMMIT":
            levels.append(current[0])

    committer = store._committer
    assert committer is not None
    committer._conn.execute("PRAGMA synchronous = FULL")
    committer._synchronous = current[0] = "FULL"
    committer._conn.set_trace_callback(trace)
    try:
        write()
    finally:
        committer._conn.set_trace_callback(None)
    return levels


def test_a_journal_record_that_precedes_an_action_commits_with_a_full_sync(tmp_path: Path) -> None:
    store = _store(tmp_path / "state.db")
    audit = AuditRecord(at=T0, kind="rotated", token_name="t")
    state = ManagedTokenState(token_name="t", organization="contoso")
    assert _commits(store, lambda: store.append_audit(audit)) == ["NORMAL"]
    assert _commits(store, lambda: store.save_token(state)) == ["NORMAL"]
    # Every unfinished step is followed by its action (create, write, revoke…): synced first.
    for step in (Step.PLANNED, Step.CREATING, Step.DISTRIBUTING, Step.ROLLING_BACK):
        assert _commits(store, functools.partial(store.record, _op(step))) == ["FULL"], step
    # A finished operation has no action left: no sync of its own (the next full one syncs it).
    assert _commits(store, lambda: store.record(_op(Step.DONE))) == ["NORMAL"]
    store.close()


def test_opening_a_current_file_takes_no_write_lock(tmp_path: Path) -> None:
    """Every fleet worker opens a store: a current file is only read, so opening it does not
    queue behind a writer (a file that needs migrating still takes the write lock)."""
    path = tmp_path / "s.db"
    _store(path).close()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    opened: list[int] = []
    try:
        thread = threading.Thread(target=lambda: opened.append(_store(path).schema_version()))
        thread.start()
        thread.join(timeout=10)
        assert opened == [SCHEMA_VERSION], "the open waited for the writer"
    finally:
        writer.execute("ROLLBACK")
        writer.close()
