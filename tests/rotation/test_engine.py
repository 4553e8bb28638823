"""The rotation engine against in-memory fakes and a real SQLite state file.

Covers the happy path, every failure branch of design §2, and a crash at every step followed by a
fresh engine on the same state (the crash is a BaseException raised from a fake).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from patwarden.domain.models import TokenSpec
from patwarden.errors import AzureDevOpsError, SinkError
from patwarden.rotation.engine import RotationEngine
from patwarden.rotation.outcomes import FindingKind, OutcomeKind, Promotion
from patwarden.rotation.ports import IssueOutcomeUnknown, SinkWriteMeta
from patwarden.secret import Secret
from tests.rotation.fakes import T0, Crash, FakeSink, spec
from tests.rotation.harness import Harness

DAY = timedelta(days=1)


@pytest.fixture
def world(tmp_path: Path) -> Harness:
    return Harness(path=tmp_path / "state.db")


def _rotate_once(world: Harness) -> str:
    report = world.run()
    assert report.outcomes[0].kind is OutcomeKind.ROTATED, report.outcomes[0]
    current = world.current_id()
    assert current is not None
    return current


def test_first_run_issues_a_pat_and_writes_every_sink(world: Harness) -> None:
    report = world.run()

    outcome = report.outcomes[0]
    assert report.ok
    assert outcome.kind is OutcomeKind.ROTATED
    assert outcome.new_authorization_id == world.current_id()
    assert world.served_ids() == [world.current_id(), world.current_id()]
    assert [s.status for s in outcome.sinks] == ["holds the new PAT (confirmed)"] * 2
    created = world.issuer.pats[world.issuer.created[0]].pat
    assert created.display_name == f"patwarden:flux-git:{outcome.operation_id}"
    assert created.valid_to == world.clock.now() + world.token.lifetime
    assert not [n for n in outcome.notes if "clamp" in n], "nothing was clamped"
    steps = [e.step for e in world.store.journal(outcome.operation_id or "")]
    assert steps[:3] == ["planned", "creating", "created"]
    assert steps[-2:] == ["promoted", "done"]  # no previous PAT: nothing to revoke
    for step in ("distributing", "distributed", "verifying", "verified"):
        assert step in steps


def test_not_due_until_issued_valid_to_minus_rotate_before(world: Harness) -> None:
    first = _rotate_once(world)
    world.advance(22 * DAY)

    report = world.run()

    assert report.outcomes[0].kind is OutcomeKind.NOT_DUE
    assert report.outcomes[0].due_at == world.clock.now() + DAY
    assert world.current_id() == first
    assert len(world.issuer.created) == 1


def test_rotation_keeps_previous_valid_until_revoke_after(world: Harness) -> None:
    first = _rotate_once(world)
    world.advance(23 * DAY)

    second = _rotate_once(world)

    assert second != first
    assert first in world.issuer.active(), "the previous PAT must survive its grace period"
    assert world.served_ids() == [second, second]
    state = world.store.load_token("flux-git")
    assert state is not None
    assert state.previous is not None
    assert state.previous.authorization_id == first
    assert state.revoke_at == world.clock.now() + world.token.revoke_after

    world.advance(world.token.revoke_after)
    report = world.run()

    assert report.outcomes[0].kind is OutcomeKind.NOT_DUE
    assert first not in world.issuer.active()
    assert [f.kind for f in report.findings] == [FindingKind.REVOKED_PREVIOUS]
    state = world.store.load_token("flux-git")
    assert state is not None
    assert state.previous is None


def test_revoke_after_zero_revokes_the_previous_pat_in_the_same_run(tmp_path: Path) -> None:
    world = Harness(path=tmp_path / "s.db", token=spec(revoke_after=timedelta(0)))
    first = _rotate_once(world)
    world.advance(23 * DAY)
    _rotate_once(world)
    assert first not in world.issuer.active()


def test_create_refused_leaves_everything_as_it_was(world: Harness) -> None:
    first = _rotate_once(world)
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
    first = _rotate_once(world)
    world.advance(23 * DAY)
    world.sinks[failing].faults.fail("write", SinkError("vault is read-only"))

    report = world.run()

    outcome = report.outcomes[0]
    assert outcome.kind is OutcomeKind.ROLLED_BACK
    assert "vault is read-only" in outcome.reason
    assert world.served_ids() == [first, first]
    assert outcome.new_authorization_id not in world.issuer.active()
    assert first in world.issuer.active()
    assert world.current_id() == first
    assert {s.sink: s.authorization_id for s in outcome.sinks} == {
        "fake kv": first,
        "fake group": first,
    }


def test_restore_failure_keeps_the_new_pat_valid_and_says_who_holds_what(world: Harness) -> None:
    first = _rotate_once(world)
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
    world.check_invariants()

    # The next run rotates everything onto a third PAT; both older ones are then revoked in time.
    world.sinks[0].restorable = True
    third = _rotate_once(world)
    world.advance(world.token.revoke_after + timedelta(hours=2))
    world.run()
    assert world.issuer.active() == {third}


def test_verification_failure_rolls_back(world: Harness) -> None:
    first = _rotate_once(world)
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
    _rotate_once(world)


def test_lost_create_that_never_happened_creates_nothing(world: Harness) -> None:
    world.issuer.faults.fail("create", IssueOutcomeUnknown("timeout"))
    report = world.run()
    assert report.outcomes[0].kind is OutcomeKind.FAILED
    assert "did not complete" in report.outcomes[0].reason
    assert world.issuer.created == []


def test_clamped_lifetime_is_noted_and_a_looping_schedule_refused(world: Harness) -> None:
    world.issuer.max_lifetime = timedelta(days=5)

    report = world.run()

    assert report.outcomes[0].kind is OutcomeKind.ROTATED
    assert any("clamped" in note for note in report.outcomes[0].notes)
    world.advance(timedelta(hours=1))
    again = world.run()
    assert again.outcomes[0].kind is OutcomeKind.FAILED
    assert "refusing to rotate" in again.outcomes[0].reason
    assert len(world.issuer.created) == 1


def test_config_that_would_loop_is_refused_before_anything_is_created(tmp_path: Path) -> None:
    world = Harness(path=tmp_path / "s.db", token=spec(rotate_before=timedelta(days=30)))
    report = world.run()
    assert report.outcomes[0].kind is OutcomeKind.FAILED
    assert "rotate_before" in report.outcomes[0].reason
    assert world.issuer.created == []


def test_dry_run_changes_nothing(world: Harness) -> None:
    report = world.run(dry_run=True)
    assert report.outcomes[0].kind is OutcomeKind.WOULD_ROTATE
    assert world.issuer.created == []
    assert world.store.load_token("flux-git") is None


def test_force_rotates_a_token_that_is_not_due(world: Harness) -> None:
    first = _rotate_once(world)
    report = world.engine().run([world.token], force={"flux-git"})
    assert report.outcomes[0].kind is OutcomeKind.ROTATED
    assert world.current_id() != first


def test_locked_token_is_skipped(world: Harness) -> None:
    with world.store.token_lock("flux-git", timeout=1):
        other = Harness(path=world.path)
        report = other.engine(lock_timeout=0.05).run([world.token])
    assert report.outcomes[0].kind is OutcomeKind.SKIPPED
    assert report.ok


def test_hooks_hear_about_promotion_without_the_secret(world: Harness) -> None:
    heard: list[Promotion] = []

    def hear(spec: TokenSpec, promotion: Promotion) -> tuple[str, ...]:
        heard.append(promotion)
        return ()

    engine = world.engine(on_promoted=hear)
    engine.run([world.token])
    assert len(heard) == 1
    assert heard[0].authorization_id == world.current_id()
    assert heard[0].sinks == ("fake kv", "fake group")


def test_failing_hook_does_not_undo_a_rotation(world: Harness) -> None:
    def explode(spec: object, promotion: object) -> tuple[str, ...]:
        raise RuntimeError("webhook down")

    report = world.engine(on_promoted=explode).run([world.token])
    assert report.outcomes[0].kind is OutcomeKind.ROTATED
    assert any(r.kind == "hook_failed" for r in world.store.audit())


def test_no_secret_reaches_the_state_file_or_the_report(world: Harness) -> None:
    _rotate_once(world)
    world.advance(23 * DAY)
    world.sinks[1].faults.fail("write", SinkError("boom"))
    report = world.run()
    world.store.close()
    blob = b"".join(p.read_bytes() for p in world.path.parent.glob("state.db*") if p.is_file())
    for entry in world.issuer.pats.values():
        assert entry.value.encode() not in blob
        assert entry.value not in repr(report)
        assert entry.value not in str(report.to_json())


# (where, method, raised after the call, what the next run does: sinks readable, unreadable).
# "fresh": nothing was created, the next run rotates once; "recovered": the crashed rotation's PAT
# becomes current (no third PAT); "rolled_back": its PAT is revoked and a third PAT rotated in.
CRASH_POINTS = [
    ("issuer", "create", False, "fresh", "fresh"),
    ("issuer", "create", True, "rolled_back", "rolled_back"),  # the value died with the process
    ("sink0", "current_version", False, "fresh", "fresh"),
    ("sink0", "write", False, "rolled_back", "rolled_back"),  # no sink got the value
    ("sink0", "write", True, "recovered", "rolled_back"),  # read back from kv, if readable
    ("sink1", "write", True, "recovered", "rolled_back"),
    ("issuer", "verify", False, "recovered", "rolled_back"),
    ("sink0", "read_back", False, "recovered", "rolled_back"),
    ("sink1", "read_back", False, "recovered", "rolled_back"),
    ("issuer", "revoke", False, "recovered", "recovered"),  # promoted: only the tail was left
    ("issuer", "revoke", True, "recovered", "recovered"),
]


@pytest.mark.parametrize(("where", "method", "after", "if_readable", "if_not"), CRASH_POINTS)
@pytest.mark.parametrize("readable", [True, False])
def test_crash_at_any_step_resumes_safely(
    tmp_path: Path,
    where: str,
    method: str,
    after: bool,
    if_readable: str,
    if_not: str,
    readable: bool,
) -> None:
    expected = if_readable if readable else if_not
    world = Harness(path=tmp_path / "s.db", token=spec(revoke_after=timedelta(0)))
    for sink in world.sinks:
        sink.readable = readable
    first = _rotate_once(world)
    world.advance(23 * DAY)
    target = world.issuer if where == "issuer" else world.sinks[int(where[-1])]
    target.faults.fail(method, Crash(), after=after)

    with pytest.raises(Crash):
        world.run()
    crashed = list(world.issuer.created[1:])  # the PAT the crashed run created, if any
    assert len(crashed) == (0 if expected == "fresh" else 1)
    # A new process: new store connection and engine, same state file and world.
    world.store = type(world.store)(path=world.path, now=world.clock.now)
    world.check_invariants()
    report = world.run()
    world.check_invariants()

    current = world.current_id()
    assert current is not None
    created = world.issuer.created
    kinds = [f.kind for f in report.findings]
    if expected == "fresh":
        assert report.outcomes[0].kind is OutcomeKind.ROTATED
        assert created == [first, current]
    elif expected == "recovered":
        assert report.outcomes[0].kind is OutcomeKind.NOT_DUE
        assert created == [first, *crashed]
        assert current == crashed[0], "the crashed rotation's PAT is taken over, not replaced"
        finding = FindingKind.REVOKED_PREVIOUS if method == "revoke" else FindingKind.RESUMED
        assert finding in kinds
    else:
        assert report.outcomes[0].kind is OutcomeKind.ROTATED
        assert created == [first, *crashed, current]
        assert crashed[0] not in world.issuer.active(), "the crashed rotation's PAT is revoked"
        assert FindingKind.RESUMED in kinds
    assert world.served_ids() == [current, current]
    world.settle()
    assert world.issuer.active() == {current}, "no orphan or previous PAT survives"
    assert world.issuer.created == created, "settling creates nothing more"


def _meta() -> SinkWriteMeta:
    return SinkWriteMeta(
        token_name="x", authorization_id="seed", operation_id="0" * 32, valid_to=T0
    )


def test_plan_says_why_without_changing_anything(world: Harness) -> None:
    (before,) = world.engine().plan([world.token])
    assert before.decision.is_due
    assert before.state is None
    _rotate_once(world)
    world.advance(2 * DAY)
    (after,) = world.engine().plan([world.token, spec("bad:name")])[:1]
    assert not after.decision.is_due
    assert after.decision.due_at == world.clock.now() + 21 * DAY
    assert after.problem is None
    (bad,) = world.engine().plan([spec("x", rotate_before=40 * DAY)])
    assert bad.problem is not None
    assert "not shorter than lifetime" in bad.problem
    assert len(world.issuer.created) == 1


def test_a_sink_that_cannot_be_built_fails_only_its_token(tmp_path: Path) -> None:
    world = Harness(path=tmp_path / "s.db")

    def resolve(token: TokenSpec) -> list[FakeSink]:
        if token.name == "broken":
            raise SinkError("key_vault sink: vault_url is not https")
        return world.sinks

    engine = RotationEngine(
        issuer=world.issuer, store=world.store, clock=world.clock, sinks=resolve
    )
    report = engine.run([spec("broken"), world.token])
    assert [o.kind for o in report.outcomes] == [OutcomeKind.FAILED, OutcomeKind.ROTATED]
    assert "not https" in report.outcomes[0].reason


def test_resume_waits_when_it_cannot_tell_whether_a_create_happened(world: Harness) -> None:
    world.issuer.faults.fail("create", Crash(), after=True)
    with pytest.raises(Crash):
        world.run()
    for _ in range(2):  # the run's own listing, then the marker lookup of the resume
        world.issuer.faults.fail("list_marked", AzureDevOpsError("HTTP 503"))

    report = world.run()

    assert report.outcomes[0].kind is OutcomeKind.FAILED
    assert "could not be resumed" in report.outcomes[0].reason
    assert len(world.issuer.created) == 1, "no second PAT while the first is unaccounted for"
    world.check_invariants()
    after = world.run()
    assert after.outcomes[0].kind is OutcomeKind.ROTATED
    assert world.issuer.active() == {world.current_id()}


def test_each_step_is_audited_once_per_operation(world: Harness) -> None:
    _rotate_once(world)
    world.advance(23 * DAY)
    world.run()  # rotates again; the previous PAT waits for its grace period
    world.run()  # still within the grace period: nothing new to audit
    world.advance(world.token.revoke_after + timedelta(seconds=1))
    world.run()  # the grace period is over: the previous PAT is revoked
    kinds = [(r.kind, r.operation_id) for r in world.store.audit()]
    assert len(kinds) == len(set(kinds)), kinds
    assert sum(kind == "operation_revoke_pending" for kind, _ in kinds) == 1


def test_a_stranded_rotation_is_repaired_by_the_next_run_not_the_next_schedule(
    world: Harness,
) -> None:
    # Found by tests/reliability (a sink write whose answer was lost, then a restore that could
    # not be confirmed): the new PAT stayed valid, unused, until the next *scheduled* rotation
    # weeks later — two active PATs for one token long after recovery.
    first = _rotate_once(world)
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
