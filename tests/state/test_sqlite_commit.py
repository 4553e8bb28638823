"""Group commit: the writes of a process's threads share transactions; each fails alone."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from patwarden.domain.models import AuditRecord
from patwarden.domain.operation import Step
from patwarden.state import sqlite_commit
from tests.state.test_sqlite import T0, _op, _store


def test_the_threads_of_one_process_commit_their_writes_together(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = _store(path)
    errors: list[BaseException] = []
    start = threading.Barrier(16)

    def work(n: int) -> None:
        try:
            with _store(path) as store:
                start.wait()
                for i in range(20):
                    op = replace(_op(Step.CREATING, op_id=f"{n:016d}{i:016d}"), token_name=f"t{n}")
                    store.record(op, audit=[AuditRecord(at=T0, kind="rotated", token_name="t")])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert first._committer is not None
    assert first._committer.transactions < 16 * 20  # grouped: fewer syncs than records
    assert len(list(first.audit())) == 16 * 20
    assert all(len(first.journal(f"{n:016d}{i:016d}")) == 1 for n in range(16) for i in range(20))
    first.close()


def test_a_failing_write_fails_alone_and_leaves_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path / "state.db")
    assert store._committer is not None
    good = sqlite_commit.Statements()
    store._put_audit(good, AuditRecord(at=T0, kind="rotated", token_name="t"))
    with pytest.raises(sqlite3.Error):
        store._committer.submit([*good.items, ("INSERT INTO nowhere VALUES (1)", ())], durable=True)
    assert list(store.audit()) == []  # the batch's first statement was undone with it
    store.append_audit(AuditRecord(at=T0, kind="rotated", token_name="t"))
    assert len(list(store.audit())) == 1
    store.close()


def test_in_a_group_the_failing_batch_is_undone_and_the_others_commit(tmp_path: Path) -> None:
    store = _store(tmp_path / "state.db")
    committer = store._committer
    assert committer is not None
    good, bad = sqlite_commit.Statements(), sqlite_commit.Statements()
    store._put_audit(good, AuditRecord(at=T0, kind="rotated", token_name="good"))
    store._put_audit(bad, AuditRecord(at=T0, kind="rotated", token_name="bad"))
    bad.execute("INSERT INTO nowhere VALUES (1)")
    batches = [
        sqlite_commit._Batch(good.items, durable=True),
        sqlite_commit._Batch(bad.items, durable=False),
    ]
    committer._commit(batches)  # what submit() does with two threads' batches waiting
    assert batches[0].error is None
    assert isinstance(batches[1].error, sqlite3.Error)
    assert all(batch.done for batch in batches)
    assert [record.token_name for record in store.audit()] == ["good"]
    store.close()


def test_a_group_that_succeeds_is_one_transaction_without_savepoints(tmp_path: Path) -> None:
    store = _store(tmp_path / "state.db")
    committer = store._committer
    assert committer is not None
    batches = []
    for name in ("a", "b", "c"):
        statements = sqlite_commit.Statements()
        store._put_audit(statements, AuditRecord(at=T0, kind="rotated", token_name=name))
        batches.append(sqlite_commit._Batch(statements.items, durable=True))
    executed: list[str] = []
    committer._conn.set_trace_callback(executed.append)
    committer._commit(batches)
    statements = [s.split()[0] for s in executed if not s.startswith("PRAGMA")]
    assert statements == ["BEGIN", "INSERT", "INSERT", "INSERT", "COMMIT"]
    assert [record.token_name for record in store.audit()] == ["a", "b", "c"]
    store.close()


class _CommitFails:
    """The committer's connection, except that every COMMIT fails (a full disk, say)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    def execute(self, sql: str, *params: Any) -> sqlite3.Cursor:
        if sql == "COMMIT":
            raise sqlite3.OperationalError("database or disk is full")
        return self._conn.execute(sql, *params)


def test_when_the_retry_after_a_failing_batch_cannot_commit_every_batch_is_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(tmp_path / "state.db")
    committer = store._committer
    assert committer is not None
    bad, good, later = (sqlite_commit.Statements() for _ in range(3))
    for statements, name in ((bad, "bad"), (good, "good"), (later, "later")):
        store._put_audit(statements, AuditRecord(at=T0, kind="rotated", token_name=name))
    bad.execute("INSERT INTO nowhere VALUES (1)")
    batches = [sqlite_commit._Batch(s.items, durable=True) for s in (bad, good, later)]
    monkeypatch.setattr(committer, "_conn", _CommitFails(committer._conn))
    with pytest.raises(sqlite3.OperationalError, match="full"):
        committer._commit(batches)
    assert all(batch.done for batch in batches), "no thread is left waiting for an answer"
    assert all(isinstance(batch.error, sqlite3.Error) for batch in batches)
    monkeypatch.undo()
    assert list(store.audit()) == []
    store.close()
