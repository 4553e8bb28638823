"""The rotation engine's failure branches (design §2): what fails, what is rolled back, what stays.

A refused create, a sink that cannot be written or restored, a failed verification or read-back,
a lost create answer, a stranded rotation repaired by the next run.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from patwarden.domain.models import SinkRecord
from patwarden.errors import AzureDevOpsError, SinkError
from patwarden.rotation.outcomes import OutcomeKind
from patwarden.rotation.ports import IssueOutcomeUnknown, SinkVersion, SinkWriteMeta
from patwarden.secret import Secret
from tests.rotation.fakes import T0, FakeSink
from tests.rotation.harness import Harness, rotate_once

DAY = timedelta(days=1)


@pytest.fixture
def world(tmp_path: Path) -> Harness:
    return Harness(path=tmp_path / "state.db")


def test_create_refused_leaves_everything_as_it_was(world: Harness) -> None:
    first = rotate_once(world)
    world.advance(23 * DAY)
    world.issuer.faults.fail("create", AzureDevOpsError("patLifespanPolicyViolation"))

    report = world.run()

    outcome = report.outcomes[0]
    assert not report.ok
    assert outcome.kind is OutcomeKind.FAILED
    assert "patLifespanPolicyViolation" in outcome.reason
    assert world.current_id() == first
    assert world.served_ids() == [first, first]


@pytest.mark.parametrize("failing", [0, 1])
def test_sink_write_failure_restores_revokes_new_and_keeps_old(
    world: Harness, failing: int
) -> None:
    first = rotate_once(world)
    world.advance(23 * DAY)
    world.sinks[failing].faults.fail("write", SinkError("vault is read-only"))

    report = world.run()

    outcome = report.outcomes[0]
    assert outcome.kind is OutcomeKind.ROLLED_BACK
    assert "vault is read-only" in outcome.reason
    [audited] = [r for r in world.store.audit() if r.operation_id == outcome.operation_id]
    detail = dict(audited.detail)
    assert (detail["step"], detail["outcome"]) == ("failed", "rolled_back")
    assert "vault is read-only" in str(detail["reason"])
    assert world.served_ids() == [first, first]
    assert outcome.new_authorization_id not in world.issuer.active()
    assert first in world.issuer.active()
    assert world.current_id() == first
    assert {s.sink: s.authorization_id for s in outcome.sinks} == {
        "fake kv": first,
        "fake group": first,
    }


def test_restore_failure_keeps_the_new_pat_valid_and_says_who_holds_what(world: Harness) -> None:
    first = rotate_once(world)
    world.advance(23 * DAY)
    world.sinks[0].restorable = False
    world.sinks[1].faults.fail("write", SinkError("denied"))

    report = world.run()

    outcome = report.outcomes[0]
    new = outcome.new_authorization_id
    assert outcome.kind is OutcomeKind.ROLLED_BACK
    assert new in world.issuer.active(), "a sink still serves it: it must not be revoked"
    assert first in world.issuer.active()
    assert world.served_ids() == [new, first]
    reports = {s.sink: (s.authorization_id, s.status) for s in outcome.sinks}
    assert reports["fake kv"] == (new, "still holds the new PAT (restore failed)")
    assert reports["fake group"][0] == first
    state = world.store.load_token("flux-git")
    assert state is not None
    assert {r.sink: r.authorization_id for r in state.sinks} == {
        "fake kv": new,
        "fake group": first,
    }
    serving = world.sinks[0].current_version()
    assert serving is not None
    assert state.sink("fake kv") == SinkRecord(
        sink="fake kv", authorization_id=new, ref=serving.ref
    )
    world.check_invariants()

    # The next run rotates everything onto a third PAT; both older ones are then revoked in time.
    world.sinks[0].restorable = True
    third = rotate_once(world)
    world.advance(world.token.revoke_after + timedelta(hours=2))
    world.run()
    assert world.issuer.active() == {third}


def test_verification_failure_rolls_back(world: Harness) -> None:
    first = rotate_once(world)
    world.advance(23 * DAY)
    world.issuer.faults.fail("verify", AzureDevOpsError("TF400813: not authorized"))

    report = world.run()

    outcome = report.outcomes[0]
    assert outcome.kind is OutcomeKind.ROLLED_BACK
    assert "TF400813" in outcome.reason
    assert world.served_ids() == [first, first]
    assert world.issuer.active() == {first}


def test_read_back_mismatch_rolls_back(world: Harness) -> None:
    class Garbling(FakeSink):
        def read_back(self) -> Secret | None:
            return Secret("something else")

    world.sinks[1] = Garbling("group")
    world.sinks[1].write(Secret("seed"), _meta())  # something to restore to
    report = world.run()

    outcome = report.outcomes[0]
    assert outcome.kind is OutcomeKind.ROLLED_BACK
    assert "different value" in outcome.reason
    assert world.issuer.active() == set()
    assert world.sinks[0].value is None
    assert world.sinks[1].value == "seed"


def test_unreadable_sink_is_verified_through_azure_devops_only(world: Harness) -> None:
    world.sinks[0].readable = False
    report = world.run()
    assert report.outcomes[0].kind is OutcomeKind.ROTATED
    op_id = report.outcomes[0].operation_id or ""
    op = world.store.load_operation(op_id)
    assert op is not None
    assert [p.read_back for p in op.sinks] == [None, True]


def test_lost_create_answer_is_found_by_marker_and_cleaned_up(world: Harness) -> None:
    world.issuer.faults.fail("create", IssueOutcomeUnknown("connection reset"), after=True)

    report = world.run()

    assert report.outcomes[0].kind is OutcomeKind.ROLLED_BACK
    assert len(world.issuer.created) == 1
    assert world.issuer.active() == set(), "the PAT whose value was lost is revoked"
    assert world.served_ids() == [None, None]
    rotate_once(world)


def test_lost_create_that_never_happened_creates_nothing(world: Harness) -> None:
    world.issuer.faults.fail("create", IssueOutcomeUnknown("timeout"))
    report = world.run()
    assert report.outcomes[0].kind is OutcomeKind.FAILED
    assert "did not complete" in report.outcomes[0].reason
    assert world.issuer.created == []


def _meta() -> SinkWriteMeta:
    return SinkWriteMeta(
        token_name="x", authorization_id="seed", operation_id="0" * 32, valid_to=T0
    )


def test_a_stranded_rotation_is_repaired_by_the_next_run_not_the_next_schedule(
    world: Harness,
) -> None:
    # Found by tests/reliability (a sink write whose answer was lost, then a restore that could
    # not be confirmed): the new PAT stayed valid, unused, until the next *scheduled* rotation
    # weeks later — two active PATs for one token long after recovery.
    first = rotate_once(world)
    world.sinks[0].restorable = False
    world.sinks[1].faults.fail("write", SinkError("denied"))
    stranded = world.run(force={world.token.name}).outcomes[0]
    assert stranded.kind is OutcomeKind.ROLLED_BACK
    assert world.issuer.active() == {first, stranded.new_authorization_id}
    world.sinks[0].restorable = True

    repaired = world.run().outcomes[0]  # the token is not due: it rotates to converge

    assert repaired.kind is OutcomeKind.ROTATED, repaired
    assert "a failed rotation left sinks recorded as holding PAT" in repaired.reason
    newest = repaired.new_authorization_id
    world.advance(world.token.revoke_after + timedelta(seconds=world.margin + 1))
    again = world.run().outcomes[0]
    assert again.kind is OutcomeKind.NOT_DUE, "converged: no rotation after that"
    assert world.issuer.active() == {newest}
    world.check_invariants()


def test_a_sink_unreachable_once_the_pat_exists_rolls_back(
    world: Harness,
) -> None:
    class Flaky(FakeSink):
        """Readable for the run's checks; unreachable once the new PAT has been created. The
        rollback target is the version the run read before the create (not read again)."""

        def current_version(self) -> SinkVersion | None:
            if len(world.issuer.created) > 1:
                raise SinkError("vault unreachable")
            return super().current_version()

        def write(self, secret: Secret, meta: SinkWriteMeta) -> SinkVersion:
            if len(world.issuer.created) > 1:
                raise SinkError("vault unreachable")
            return super().write(secret, meta)

    world.sinks[1] = Flaky("group")
    first = rotate_once(world)
    world.advance(23 * DAY)

    report = world.run()

    outcome = report.outcomes[0]
    assert outcome.kind is OutcomeKind.ROLLED_BACK
    assert "vault unreachable" in outcome.reason
    assert world.served_ids() == [first, first]
    assert world.current_id() == first
    # The unreadable sink cannot prove it does not hold the new PAT: it stays valid for now.
    [new] = world.issuer.active() - {first}
    assert new in world.issuer.created
    world.check_invariants()


def test_plan_names_the_pat_a_rollback_could_not_revoke_and_the_next_run_revokes_it(
    world: Harness,
) -> None:
    first = rotate_once(world)
    world.advance(23 * DAY)
    world.sinks[1].faults.fail("write", SinkError("denied"))
    world.issuer.faults.fail("revoke", AzureDevOpsError("HTTP 503"))  # the rollback's revoke

    outcome = world.run().outcomes[0]

    stranded = outcome.new_authorization_id
    assert outcome.kind is OutcomeKind.ROLLED_BACK
    assert world.issuer.active() == {first, stranded}
    assert world.served_ids() == [first, first]
    (plan,) = world.engine().plan([world.token])
    assert plan.stranded == (stranded,)
    world.advance(timedelta(seconds=world.margin + 1))
    world.run()
    assert stranded not in world.issuer.active()
    (plan,) = world.engine().plan([world.token])
    assert plan.stranded == ()  # the journal knows it is revoked: plan no longer lists it
    (op,) = [
        o
        for o in world.store.operations(world.token.name)
        if o.operation_id == outcome.operation_id
    ]
    assert op.new_revoked
