"""Scenarios that pin the engine bugs mutation testing found surviving every suite (issue 17).

Each test names the planted bug it kills (A to H of the issue); each one puts a revoked PAT into
service or causes an outage when the bug is present. They run the real engine and SQLite store
against the in-memory fakes.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from patwarden.domain.marker import format_marker
from patwarden.errors import SinkError
from patwarden.rotation.outcomes import FindingKind, OutcomeKind
from patwarden.rotation.ports import IssueOutcomeUnknown, SinkVersion, SinkWriteMeta
from patwarden.rotation.reconcile import adopt_token, revoke_orphans
from patwarden.secret import Secret
from tests.rotation.fakes import Crash, FakeSink, WrongOrganization, spec
from tests.rotation.harness import Harness

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


@pytest.fixture
def world(tmp_path: Path) -> Harness:
    return Harness(path=tmp_path / "state.db")


def _marker(n: int, token: str = "flux-git") -> str:
    return format_marker(token_name=token, operation_id=f"{n:032x}")


def _rotated(world: Harness) -> str:
    report = world.run()
    assert report.outcomes[0].kind is OutcomeKind.ROTATED, report.outcomes[0]
    current = world.current_id()
    assert current is not None
    return current


class _BlindSink(FakeSink):
    """A sink whose version cannot be read (``current_version`` raises) while ``blind`` is set."""

    blind = False

    def current_version(self) -> SinkVersion | None:
        if self.blind:
            raise SinkError(f"{self.name}: version metadata unreadable")
        return super().current_version()


class _FailingWrite(FakeSink):
    """A sink whose write fails and, at that moment, blinds ``other`` (its version unreadable)."""

    def __init__(self, name: str, other: _BlindSink) -> None:
        super().__init__(name)
        self.other = other
        self.failing = False

    def write(self, secret: Secret, meta: SinkWriteMeta) -> SinkVersion:
        if self.failing:
            self.other.blind = True
            raise SinkError("vault is read-only")
        return super().write(secret, meta)


def test_a_runs_inside_the_grace_period_are_not_due_and_ok(world: Harness) -> None:
    """Bug A (``is_active`` ``and``→``or``): a run inside the grace window reported FAILED."""
    first = _rotated(world)
    world.advance(23 * DAY)
    second = _rotated(world)  # its operation now waits in its revocation tail

    for _ in range(3):  # several runs, all inside revoke_after (1 day)
        world.advance(4 * HOUR)
        report = world.run()
        assert report.ok, report.outcomes[0]
        assert report.outcomes[0].kind is OutcomeKind.NOT_DUE
        assert world.issuer.active() == {first, second}
        assert world.served_ids() == [second, second]

    world.advance(world.token.revoke_after)
    report = world.run()
    assert report.ok
    assert [f.kind for f in report.findings] == [FindingKind.REVOKED_PREVIOUS]
    assert world.issuer.active() == {second}


def test_b_a_sink_whose_version_is_unreadable_is_still_restored(tmp_path: Path) -> None:
    """Bug B (``_restore`` takes an unreadable version as restored): the sink kept the new PAT."""
    kv = _BlindSink("kv")
    group = _FailingWrite("group", kv)
    world = Harness(path=tmp_path / "s.db", sinks=[kv, group])
    first = _rotated(world)
    first_value = kv.value
    world.advance(23 * DAY)
    group.failing = True

    report = world.run()

    outcome = report.outcomes[0]
    assert outcome.kind is OutcomeKind.ROLLED_BACK
    assert kv.value == first_value, "kv must be restored though its version is unreadable"
    assert world.served_ids() == [first, first]
    assert first in world.issuer.active()
    assert world.current_id() == first
    world.check_invariants()


def test_c_rollback_restores_sinks_without_authorization_ids(tmp_path: Path) -> None:
    """Bug C (``_serves`` inverted without ids): rollback revoked the PAT such a sink served."""
    untagged = FakeSink("kv", tags=False)
    group = FakeSink("group")
    world = Harness(path=tmp_path / "s.db", sinks=[untagged, group])
    first = _rotated(world)
    world.advance(23 * DAY)
    group.faults.fail("write", SinkError("denied"))

    report = world.run()

    outcome = report.outcomes[0]
    assert outcome.kind is OutcomeKind.ROLLED_BACK
    assert world.served_ids() == [first, first], "the untagged sink must be restored"
    assert outcome.new_authorization_id not in world.issuer.active()
    assert world.issuer.active() == {first}
    world.check_invariants()


def test_d_adopt_takes_the_newest_of_three_marked_pats(world: Harness) -> None:
    """Bug D (``mine[+1]``): with three or more marked PATs, adopt took the second oldest."""
    token = spec()
    oldest = world.issuer.add_external(display_name=_marker(1), age=3 * DAY)
    newest = world.issuer.add_external(display_name=_marker(3), age=DAY)
    middle = world.issuer.add_external(display_name=_marker(2), age=2 * DAY)
    other = world.issuer.add_external(display_name=_marker(4, "other-token"), age=HOUR)
    blind = {"kv": FakeSink("kv", tags=False, initial=("some-value", None))}

    state, result = adopt_token(
        spec=token,
        marked=[oldest, newest, middle, other],
        sinks=blind,
        now=world.clock.now(),
    )

    assert state.current is not None
    assert state.current.authorization_id == newest.authorization_id
    assert result.current_authorization_id == newest.authorization_id
    assert "the newest marked PAT" in result.detail
    assert result.notes == ("2 other marked PAT(s) will be revoked by reconcile as orphans",)


def test_adopt_with_sinks_serving_different_pats_takes_the_newest_and_says_so(
    world: Harness,
) -> None:
    older = world.issuer.add_external(display_name=_marker(1), age=2 * DAY)
    newer = world.issuer.add_external(display_name=_marker(2), age=DAY)
    sinks = {
        "kv": FakeSink("kv", initial=("v1", newer.authorization_id)),
        "group": FakeSink("group", initial=("v2", older.authorization_id)),
    }
    state, result = adopt_token(
        spec=spec(), marked=[older, newer], sinks=sinks, now=world.clock.now()
    )
    assert state.current == newer
    assert "the sinks serve different PATs; the newest is taken as current" in result.notes
    same = {"kv": FakeSink("kv", initial=("v1", newer.authorization_id))}
    _, alone = adopt_token(spec=spec(), marked=[older, newer], sinks=same, now=world.clock.now())
    assert not [n for n in alone.notes if "different PATs" in n]


def test_f_a_lost_create_never_takes_an_unrelated_marked_pat(world: Harness) -> None:
    """Bug F (``_find_marked`` ``and``→``or``): another operation's PAT was taken as the new one."""
    first = _rotated(world)
    stranger = world.issuer.add_external(display_name=_marker(7, "other-token"), age=HOUR)
    world.advance(23 * DAY)
    world.issuer.faults.fail("create", IssueOutcomeUnknown("timeout"))  # it never happened

    report = world.run()

    outcome = report.outcomes[0]
    assert outcome.kind is OutcomeKind.FAILED
    assert "did not complete" in outcome.reason
    assert outcome.new_authorization_id is None
    assert world.current_id() == first
    assert world.served_ids() == [first, first]
    assert world.issuer.active() == {first, stranger.authorization_id}
    assert world.issuer.created == [first]
    world.check_invariants()


def test_h_one_unreadable_sink_does_not_stop_the_live_scan(world: Harness) -> None:
    """Bug H (``_live_ids`` ``continue``→``break``): a served PAT was revoked as an orphan."""
    world.run()
    state = world.store.load_token("flux-git")
    assert state is not None
    served = world.issuer.add_external(display_name=_marker(1), age=DAY)
    orphan = world.issuer.add_external(display_name=_marker(2), age=DAY)
    unreadable = _BlindSink("first")
    unreadable.blind = True
    extra = FakeSink("extra")
    extra.write(
        Secret(world.issuer.pats[served.authorization_id].value),
        SinkWriteMeta(
            token_name="flux-git",
            authorization_id=served.authorization_id,
            operation_id=f"{1:032x}",
            valid_to=served.valid_to,
        ),
    )

    findings = revoke_orphans(
        spec=world.token,
        state=state,
        operations=[],
        marked=[served, orphan],
        sinks={"first": unreadable, "extra": extra},
        issuer=world.issuer,
        now=world.clock.now(),
        margin=HOUR,
        dry_run=False,
    )

    assert [(f.kind, f.authorization_id) for f in findings] == [
        (FindingKind.ORPHAN_REVOKED, orphan.authorization_id)
    ]
    assert served.authorization_id in world.issuer.active()


def test_every_issuer_call_names_the_tokens_organization(tmp_path: Path) -> None:
    """The fake issuer refuses (``WrongOrganization``) a call for another organization."""
    world = Harness(path=tmp_path / "s.db")
    world.issuer.organization = "fabrikam"
    world.token = replace(world.token, organization="fabrikam")
    first = _rotated(world)
    world.advance(23 * DAY)
    second = _rotated(world)
    world.advance(2 * DAY)
    world.run()
    assert world.issuer.active() == {second} != {first}

    world.token = replace(world.token, organization="contoso")
    with pytest.raises(WrongOrganization):
        world.run()


# --- sink errors while restoring and recovering ------------------------------------------------


def test_a_restore_that_raises_keeps_the_new_pat_and_the_next_run_repairs(world: Harness) -> None:
    first = _rotated(world)
    world.advance(23 * DAY)
    kv, group = world.sinks
    group.faults.fail("write", SinkError("denied"))
    kv.faults.fail("restore", SinkError("vault is locked"))

    report = world.run()

    outcome = report.outcomes[0]
    new = outcome.new_authorization_id
    assert outcome.kind is OutcomeKind.ROLLED_BACK
    assert new in world.issuer.active(), "kv still serves it: it must not be revoked"
    assert world.served_ids() == [new, first]
    statuses = {s.sink: s.status for s in outcome.sinks}
    assert statuses["fake kv"] == "still holds the new PAT (restore failed)"
    world.check_invariants()

    third = _rotated(world)
    world.settle()
    assert world.issuer.active() == {third}
    assert world.served_ids() == [third, third]


def _crash_after_both_writes(world: Harness) -> tuple[str, str]:
    first = _rotated(world)
    world.advance(23 * DAY)
    world.sinks[1].faults.fail("write", Crash(), after=True)
    with pytest.raises(Crash):
        world.run()
    world.store = type(world.store)(path=world.path, now=world.clock.now)
    return first, world.issuer.created[-1]


def test_recovery_reads_the_value_back_from_another_sink_when_one_raises(
    world: Harness,
) -> None:
    _, crashed = _crash_after_both_writes(world)
    world.sinks[0].faults.fail("read_back", SinkError("kv unreachable"))

    report = world.run()

    assert report.outcomes[0].kind is OutcomeKind.NOT_DUE
    assert world.current_id() == crashed
    assert len(world.issuer.created) == 2
    assert world.served_ids() == [crashed, crashed]
    world.check_invariants()


def test_recovery_with_every_sink_failing_rolls_back_then_converges_in_the_same_run(
    world: Harness,
) -> None:
    """Nothing can be read back and kv's restore fails: the crashed rotation fails, a fresh one
    overwrites every sink, and the crashed PAT, then served by nobody, is revoked as stranded."""
    first, crashed = _crash_after_both_writes(world)
    for sink in world.sinks:
        sink.faults.fail("read_back", SinkError(f"{sink.name} unreachable"))
    world.sinks[0].faults.fail("restore", SinkError("vault is locked"))

    report = world.run()
    world.check_invariants()

    outcome = report.outcomes[0]
    assert outcome.kind is OutcomeKind.ROTATED
    assert "no sink holding it could be read back" in outcome.notes[0]
    third = world.current_id()
    assert world.issuer.created == [first, crashed, third]
    assert world.served_ids() == [third, third]
    assert world.issuer.active() == {first, third}  # first: the previous PAT, in its grace
    assert [(f.kind, f.authorization_id) for f in report.findings][-1] == (
        FindingKind.STRANDED_REVOKED,
        crashed,
    )
    world.settle()
    assert world.issuer.active() == {third}
