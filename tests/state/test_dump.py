"""check_dump: what `patwarden state check` reports about a whole state; read_sqlite reads it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from patwarden.domain.models import AuditRecord, JournalEntry
from patwarden.domain.operation import Step
from patwarden.errors import SinkError
from patwarden.state.dump import StateDump, check_dump, read_sqlite
from patwarden.state.sqlite import SqliteStateStore
from tests.rotation.harness import Harness
from tests.state.test_contract import T0, operation, token_state


def entry(seq: int, step: str, op_id: str = "1" * 32) -> JournalEntry:
    return JournalEntry(seq=seq, operation_id=op_id, token_name="t", step=step, outcome=None, at=T0)


def sound() -> StateDump:
    return StateDump(
        tokens=(token_state(),),
        operations=(operation(Step.DONE),),
        journal=(entry(1, "planned"), entry(2, "done")),
        audit=(AuditRecord(at=T0, kind="rotated", seq=1), AuditRecord(at=T0, kind="x", seq=2)),
    )


def test_a_sound_state_has_no_problem() -> None:
    assert check_dump(sound()) == []
    assert check_dump(StateDump()) == []
    assert StateDump().empty
    assert sound().counts() == "1 tokens, 1 operations, 2 journal entries, 2 audit records"


def test_every_inconsistency_is_named() -> None:
    damaged = replace(
        sound(),
        tokens=(replace(token_state(), last_operation_id="9" * 32),),
        operations=(operation(Step.DONE), operation(op_id="2" * 32)),
        journal=(entry(2, "planned"), entry(1, "creating"), entry(3, "done", op_id="3" * 32)),
        audit=(AuditRecord(at=T0, kind="a", seq=5), AuditRecord(at=T0, kind="b", seq=4)),
    )
    problems = check_dump(damaged)
    assert f"token 't' names operation {'9' * 32} that is not in the state" in problems
    assert "journal entry 1 is out of order" in problems
    assert "journal entry 3 belongs to an unknown operation" in problems
    assert f"operation {'1' * 32} stands at done but its journal ends at creating" in problems
    assert f"operation {'2' * 32} (t) has no journal entry" in problems
    assert "audit record 4 is out of order" in problems


def test_the_state_of_real_rotations_reads_whole_and_checks_sound(tmp_path: Path) -> None:
    world = Harness(path=tmp_path / "state.db")
    world.run()
    world.advance(timedelta(days=23))
    world.run()  # a second rotation: the first PAT waits for its grace period
    world.sinks[1].faults.fail("write", SinkError("denied"))
    world.run(force={world.token.name})  # a rotation rolled back
    world.store.close()

    dump = read_sqlite(
        world.path, open_store=lambda: SqliteStateStore(path=world.path, now=world.clock.now)
    )

    assert len(dump.operations) == 3
    assert len(dump.journal) > 3 * len(dump.operations), "each operation took several steps"
    assert check_dump(dump) == []
