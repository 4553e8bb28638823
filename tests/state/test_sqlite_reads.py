"""The SQLite store's read caches: decoded records by text, the locked token's reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from patwarden.domain.models import AuditRecord, ManagedTokenState
from patwarden.errors import StateError
from patwarden.state.sqlite import SqliteStateStore
from patwarden.state.sqlite_reads import DECODED_MAX, Reads
from tests.state.test_sqlite import T0, _now, _op, _pat


def _state(pat_id: str) -> ManagedTokenState:
    return ManagedTokenState(token_name="t", organization="contoso", current=_pat(pat_id))


def _audit() -> AuditRecord:
    return AuditRecord(at=T0, kind="note", token_name="t", detail=())


def test_a_text_is_decoded_once_and_a_changed_text_anew() -> None:
    reads, parsed = Reads(), []

    def parse(text: str) -> object:
        parsed.append(text)
        return json.loads(text)

    first = reads.decode('{"a": 1}', dict, parse)
    again = reads.decode('{"a": 1}', dict, parse)
    other = reads.decode('{"a": 2}', dict, parse)

    assert first is again
    assert other == {"a": 2}
    assert parsed == ['{"a": 1}', '{"a": 2}']
    for n in range(DECODED_MAX + 1):  # bounded: the cache starts over when full
        reads.decode(str(n), int, int)
    assert len(reads._decoded) <= DECODED_MAX


def test_only_the_held_tokens_reads_are_kept_until_a_write_of_them_or_the_release() -> None:
    reads, calls = Reads(), []

    def read() -> int:
        calls.append(1)
        return len(calls)

    assert reads.token("t", read) == 1
    assert reads.token("t", read) == 2, "no lock held: every read goes to the file"
    reads.hold("t")
    assert reads.token("t", read) == 3
    assert reads.token("t", read) == 3
    assert reads.token("other", read) == 4, "another token's read is not kept"
    assert reads.operations("t", False, read) == 5
    reads.writing("t", state=True)
    assert reads.token("t", read) == 6, "a write of the state forgets it"
    assert reads.operations("t", False, read) == 5, "but not the operations"
    reads.writing("t", operations=True)
    assert reads.operations("t", False, read) == 7
    assert reads.token("t", read) == 6
    reads.wrote_state("t", 0)
    assert reads.token("t", read) == 0, "what a write committed is the next answer"
    reads.wrote_state("other", 0)
    assert reads.token("other", read) == 8, "not for a token whose lock is not held"
    reads.hold(None)
    assert reads.token("t", read) == 9


def test_the_store_reads_the_locked_token_once_and_again_after_its_own_write(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    store = SqliteStateStore(path=path, now=_now)
    outside = SqliteStateStore(path=path, now=_now)  # stands for a writer that ignores locks
    store.save_token(_state("a"))
    store.record(_op())
    with store.token_lock("t", timeout=1):
        state, ops = store.load_token("t"), store.operations("t")
        outside.save_token(_state("changed"))
        assert store.load_token("t") == state, "kept while the lock is held"
        assert store.operations("t") == ops
        store.save_token(_state("b"))
        loaded = store.load_token("t")
        assert loaded is not None
        assert loaded.current == _pat("b"), "our own write is read back"
    outside.save_token(_state("c"))
    after = store.load_token("t")
    assert after is not None
    assert after.current == _pat("c"), "no lock held: the file answers"
    assert after.current.valid_from == T0


def _selects(store: SqliteStateStore) -> list[str]:
    """The statements *store*'s own connection runs from now on (its reads)."""
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    return statements


def test_a_journaled_step_keeps_the_token_state_it_wrote_as_the_next_read(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    store = SqliteStateStore(path=path, now=_now)
    fresh = SqliteStateStore(path=path, now=_now)  # no kept reads: what the file holds
    store.save_token(_state("a"))
    with store.token_lock("t", timeout=1):
        store.load_token("t")
        store.operations("t")
        selects = _selects(store)
        store.record(_op(), token=_state("b"))
        loaded = store.load_token("t")
        assert loaded == fresh.load_token("t")
        assert loaded is not None
        assert loaded.current == _pat("b")
        assert not [s for s in selects if "FROM tokens" in s], "no query: the write is the answer"
        assert store.operations("t") == fresh.operations("t")
        assert [s for s in selects if "FROM operations" in s], "operations changed: read again"
        selects.clear()
        store.append_audit(_audit())
        store.record(_op())  # no token state in this step
        assert store.load_token("t") == loaded
        assert not [s for s in selects if "FROM tokens" in s], "the token's row did not change"


def test_a_failed_write_leaves_what_it_would_have_changed_to_be_read_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    store = SqliteStateStore(path=path, now=_now)
    store.save_token(_state("a"))
    with store.token_lock("t", timeout=1):
        assert store.load_token("t") == _state("a")
        store._committer = None  # every write now fails before it commits
        with pytest.raises(StateError):
            store.save_token(_state("b"))
        selects = _selects(store)
        assert store.load_token("t") == _state("a"), "the file still holds the old state"
        assert [s for s in selects if "FROM tokens" in s], "read again, not kept"
