"""The StateStore contract, run alike against SQLite, PostgreSQL and Azure Blob (Azurite).

Every store comes from :meth:`AppContext.state_store` over a ``state:`` section, the way the
product builds it; a second context stands for a second process (its own pool, lease or file
handles).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from patwarden.app.context import AppContext
from patwarden.domain.models import AuditRecord, IssuedPat, ManagedTokenState, SinkRecord
from patwarden.domain.operation import Operation, Outcome, SinkProgress, SinkStatus, Step
from patwarden.rotation.ports import StateLocked
from patwarden.state.dump import check_dump
from tests.support import clock
from tests.support.state_backends import BACKENDS, state_config, state_context

T0 = clock.now().replace(microsecond=0)


def pat(pat_id: str) -> IssuedPat:
    return IssuedPat(
        authorization_id=pat_id,
        display_name=f"patwarden:t:{'0' * 32}",
        valid_from=T0,
        valid_to=T0 + timedelta(days=30),
        scopes=("vso.code",),
    )


def operation(
    step: Step = Step.PLANNED, op_id: str = "1" * 32, token: str = "t", minutes: int = 0
) -> Operation:
    return Operation(
        operation_id=op_id,
        token_name=token,
        organization="contoso",
        display_name=f"patwarden:{token}:{op_id}",
        scopes=("vso.code",),
        requested_valid_to=T0 + timedelta(days=30),
        revoke_after=timedelta(hours=6),
        started_at=T0 + timedelta(minutes=minutes),
        step=step,
        previous=pat("old"),
        new=pat("new"),
        sinks=(
            SinkProgress(
                sink="kv",
                status=SinkStatus.WRITTEN,
                previous=SinkRecord(sink="kv", authorization_id="old", ref="v1"),
                written=SinkRecord(sink="kv", authorization_id="new", ref="v2"),
                read_back=True,
            ),
        ),
        outcome=Outcome.ROTATED if step is Step.DONE else None,
        reason="why",
    )


def token_state(name: str = "t", current: str = "new") -> ManagedTokenState:
    return ManagedTokenState(
        token_name=name,
        organization="contoso",
        current=pat(current),
        previous=pat("old"),
        revoke_at=T0 + timedelta(hours=6),
        sinks=(SinkRecord(sink="kv", authorization_id=current, ref="v2"),),
        last_operation_id="1" * 32,
        updated_at=T0,
    )


def audit(kind: str, minutes: int = 0, **detail: Any) -> AuditRecord:
    return AuditRecord(
        at=T0 + timedelta(minutes=minutes),
        kind=kind,
        token_name="t",
        operation_id="1" * 32,
        authorization_id="new",
        detail=tuple(detail.items()),
    )


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def contexts(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[AppContext, AppContext]]:
    """Two contexts ("processes") on one new, empty state of *backend*."""
    config = state_config(backend, tmp_path, request)
    first, second = state_context(config), state_context(config)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


class TestStateStoreContract:
    def test_a_new_state_is_empty(self, contexts: tuple[AppContext, AppContext]) -> None:
        with contexts[0].state_store() as store:
            assert store.tokens() == []
            assert store.load_token("t") is None
            assert store.load_operation("1" * 32) is None
            assert store.operations("t") == []
            assert store.journal("1" * 32) == []
            assert list(store.audit()) == []

    def test_token_state_round_trips_and_is_replaced(
        self, contexts: tuple[AppContext, AppContext]
    ) -> None:
        first, second = contexts
        with first.state_store() as store:
            store.save_token(token_state("b"))
            store.save_token(token_state("a"), audit=[audit("adopted")])
            store.save_token(token_state("a", current="newer"))
        with second.state_store() as other:  # what one process wrote, another reads
            assert other.load_token("a") == token_state("a", current="newer")
            assert [t.token_name for t in other.tokens()] == ["a", "b"]
            assert [r.kind for r in other.audit()] == ["adopted"]

    def test_operations_are_journaled_step_by_step(
        self, contexts: tuple[AppContext, AppContext]
    ) -> None:
        first, second = contexts
        with first.state_store() as store:
            store.record(operation(Step.PLANNED), audit=[audit("planned")])
            store.record(operation(Step.CREATING))
            store.record(operation(Step.CREATING, op_id="2" * 32, minutes=1))
            store.record(operation(Step.DONE), token=token_state(), audit=[audit("rotated", 1)])
        with second.state_store() as other:
            assert other.load_operation("1" * 32) == operation(Step.DONE)
            assert [o.operation_id for o in other.operations("t")] == ["1" * 32, "2" * 32]
            assert [o.operation_id for o in other.operations("t", unfinished=True)] == ["2" * 32]
            assert other.operations("other") == []
            entries = other.journal("1" * 32)
            assert [e.step for e in entries] == ["planned", "creating", "done"]
            assert [e.outcome for e in entries] == [None, None, "rotated"]
            assert entries[0].seq < entries[1].seq < entries[2].seq
            assert all(e.reason == "why" and e.token_name == "t" for e in entries)
            assert other.load_token("t") == token_state()
            assert [r.kind for r in other.audit()] == ["planned", "rotated"]

    def test_audit_is_ordered_filtered_by_time_and_keeps_details(
        self, contexts: tuple[AppContext, AppContext]
    ) -> None:
        with contexts[0].state_store() as store:
            store.append_audit(audit("one", 0, sink="kv", count=2, ok=True, none=None))
            store.append_audit(audit("two", 10))
            store.append_audit(audit("three", 20))
            records = list(store.audit())
            assert [r.kind for r in records] == ["one", "two", "three"]
            assert dict(records[0].detail) == {"sink": "kv", "count": 2, "ok": True, "none": None}
            assert records[0].at == T0
            seqs = [r.seq for r in records]
            assert None not in seqs
            assert seqs == sorted(seqs)
            since = [r.kind for r in store.audit(T0 + timedelta(minutes=10))]
            assert since == ["two", "three"]

    def test_audit_answers_a_bounded_query_by_kind_token_time_and_limit(
        self, contexts: tuple[AppContext, AppContext]
    ) -> None:
        """The query a run makes (the last sign-in, the status page's recent events)."""
        first, second = contexts
        minus_ten = timezone(timedelta(hours=-10))
        with first.state_store() as store:
            for minute, kind, token in [
                (0, "rotated", "a"),
                (1, "sign_in_failed", None),
                (2, "rotated", "b"),
                (3, "revoked", "a"),
                (4, "sign_in_ok", None),
                (5, "rotated", "a"),
            ]:
                store.append_audit(replace(audit(kind, minute), token_name=token))
            # written with another UTC offset: 6 minutes after T0 all the same
            late = replace(audit("revoked", 0), token_name="b", at=(T0 + timedelta(minutes=6)))
            store.append_audit(replace(late, at=late.at.astimezone(minus_ten)))

        def kinds(records: Iterator[AuditRecord]) -> list[tuple[str, str | None]]:
            return [(r.kind, r.token_name) for r in records]

        with second.state_store() as other:
            assert kinds(other.audit(kinds=["rotated"])) == [
                ("rotated", "a"),
                ("rotated", "b"),
                ("rotated", "a"),
            ]
            assert kinds(other.audit(tokens=["a"], newest_first=True)) == [
                ("rotated", "a"),
                ("revoked", "a"),
                ("rotated", "a"),
            ]
            assert kinds(other.audit(kinds=["rotated", "revoked"], tokens=["b"])) == [
                ("rotated", "b"),
                ("revoked", "b"),
            ]
            signs = other.audit(kinds=("sign_in_failed", "sign_in_ok"), newest_first=True)
            assert kinds(signs) == [("sign_in_ok", None), ("sign_in_failed", None)]
            assert kinds(other.audit(limit=2, newest_first=True)) == [
                ("revoked", "b"),
                ("rotated", "a"),
            ]
            assert kinds(other.audit(limit=2)) == [("rotated", "a"), ("sign_in_failed", None)]
            # since is exact whatever offset a record carries, and the limit counts only matches
            since = T0 + timedelta(minutes=4)
            assert kinds(other.audit(since, limit=2)) == [("sign_in_ok", None), ("rotated", "a")]
            assert kinds(other.audit(since, newest_first=True, limit=1)) == [("revoked", "b")]
            assert kinds(other.audit(T0 + timedelta(minutes=6))) == [("revoked", "b")]
            assert [r.at for r in other.audit(T0 + timedelta(minutes=6))] == [
                T0 + timedelta(minutes=6)
            ]
            assert list(other.audit(T0 + timedelta(minutes=7))) == []
            assert list(other.audit(kinds=["adopted"])) == []
            assert list(other.audit(tokens=["nobody"], limit=3)) == []
            with pytest.raises(ValueError, match="at least 1"):
                other.audit(limit=0)

    def test_a_token_lock_excludes_other_processes_until_released(
        self, contexts: tuple[AppContext, AppContext]
    ) -> None:
        first, second = contexts
        with first.state_store() as mine, second.state_store() as theirs:
            with (
                mine.token_lock("t", timeout=5),
                pytest.raises(StateLocked, match="locked by another"),
            ):
                _in_thread(lambda: theirs.token_lock("t", timeout=0.3).__enter__())
            with theirs.token_lock("t", timeout=5):  # free again
                pass

    def test_a_token_lock_waits_for_its_holder(
        self, contexts: tuple[AppContext, AppContext]
    ) -> None:
        first, second = contexts
        released = threading.Event()
        order: list[str] = []
        with first.state_store() as mine, second.state_store() as theirs:

            def hold() -> None:
                with mine.token_lock("t", timeout=5):
                    order.append("first")
                    released.wait(0.5)
                order.append("first released")

            holder = threading.Thread(target=hold)
            holder.start()
            while not order:
                released.wait(0.01)
            with theirs.token_lock("t", timeout=20):
                order.append("second")
            holder.join()
        assert order == ["first", "first released", "second"]

    def test_the_state_exports_whole_and_checks_sound(
        self, contexts: tuple[AppContext, AppContext]
    ) -> None:
        with contexts[0].state_store() as store:
            store.record(operation(Step.PLANNED))
            store.record(operation(Step.DONE), token=token_state(), audit=[audit("rotated")])
        dump = contexts[1].state_backend().export_dump()
        assert dump.counts() == "1 tokens, 1 operations, 2 journal entries, 1 audit records"
        assert check_dump(dump) == []
        assert dump.tokens == (token_state(),)


def _in_thread(action: Any) -> None:
    """Run *action* in another thread and re-raise what it raised."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    if failure:
        raise failure[0]
