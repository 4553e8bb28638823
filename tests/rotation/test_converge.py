"""Convergence through the engine with fakes: what a run repairs, and what it reports."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from patwarden.domain.marker import format_marker
from patwarden.errors import AzureDevOpsError, SinkError
from patwarden.rotation.converge import drift_reasons, grace_ids, lost_current
from patwarden.rotation.fleet import SharedListingIssuer
from patwarden.rotation.outcomes import Finding, FindingKind, OutcomeKind
from patwarden.rotation.ports import SinkVersion, SinkWriteMeta
from patwarden.secret import Secret
from tests.rotation.fakes import T0, FakeSink
from tests.rotation.harness import Harness

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


@pytest.fixture
def world(tmp_path: Path) -> Harness:
    return Harness(path=tmp_path / "state.db")


class CheckedSink(FakeSink):
    """A fake sink with the optional Preflight ability."""

    def __init__(self, name: str, *, missing: bool = False) -> None:
        super().__init__(name)
        self.missing = missing
        self.preflights = 0

    def preflight(self) -> None:
        self.preflights += 1
        if self.missing:
            raise SinkError(f"{self.name} does not exist")


def test_a_current_pat_revoked_outside_patwarden_is_replaced_at_once(world: Harness) -> None:
    world.run()
    gone = world.current_id()
    assert gone is not None
    world.issuer.revoke(organization="contoso", authorization_id=gone)

    [outcome] = world.run().outcomes

    assert outcome.kind is OutcomeKind.ROTATED
    assert "no longer active" in outcome.reason
    assert outcome.converged
    assert outcome.replaced_authorization_id is None  # nothing valid to keep for a grace period
    assert world.served_ids() == [world.current_id()] * 2
    assert "current_lost" in [r.kind for r in world.store.audit()]


def test_an_expired_current_pat_is_replaced(world: Harness) -> None:
    world.run()
    world.advance(31 * DAY)
    [outcome] = world.run().outcomes
    assert outcome.kind is OutcomeKind.ROTATED
    assert outcome.converged, outcome.problems


def test_preflight_failure_mints_nothing(tmp_path: Path) -> None:
    missing = CheckedSink("group", missing=True)
    world = Harness(path=tmp_path / "s.db", sinks=[FakeSink("kv"), missing])
    report = world.run(force={"flux-git"})
    [outcome] = report.outcomes
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.reason.startswith("preflight failed, no PAT was created: fake group")
    assert world.issuer.created == []
    assert not report.ok
    assert [f.kind for f in report.findings] == [FindingKind.PREFLIGHT_FAILED]


def test_a_sink_without_the_preflight_ability_must_at_least_be_readable(tmp_path: Path) -> None:
    plain = FakeSink("plain")
    plain.faults.fail("current_version", SinkError("no such target"))
    world = Harness(path=tmp_path / "s.db", sinks=[plain])
    [outcome] = world.run().outcomes
    assert outcome.kind is OutcomeKind.FAILED
    assert "no such target" in outcome.reason
    assert world.issuer.created == []


def test_a_pat_a_failed_rollback_left_is_revoked_by_the_next_run(world: Harness) -> None:
    world.run()
    current = world.current_id()
    world.sinks[1].faults.fail("write", SinkError("refused"))
    world.issuer.faults.fail("revoke", AzureDevOpsError("HTTP 500"))
    failed = world.run(force={"flux-git"}).outcomes[0]
    assert failed.kind is OutcomeKind.ROLLED_BACK
    left = failed.new_authorization_id
    assert left in world.issuer.active()

    report = world.run()  # minutes later: far inside the 1 h orphan margin

    assert left not in world.issuer.active()
    assert [f.kind for f in report.findings] == [FindingKind.STRANDED_REVOKED]
    assert world.issuer.active() == {current}
    assert report.ok


def test_rotating_inside_a_grace_period_keeps_and_then_revokes_every_previous(
    world: Harness,
) -> None:
    world.run()
    ids = [world.current_id()]
    for _ in range(3):
        outcome = world.run(force={"flux-git"}).outcomes[0]
        ids.append(world.current_id())
    assert "stay(s) valid until the grace period ends" in outcome.notes[0]
    assert outcome.converged
    with world.store.token_lock("flux-git", timeout=1):
        pending = grace_ids(
            world.store.load_token("flux-git"),
            world.store.operations("flux-git", unfinished=True),
            world.clock.now(),
        )
    assert set(pending) == set(ids[:3])

    revoked, notes = world.engine().revoke(world.token, previous=True, where="s.db")

    assert {p.authorization_id for p in revoked} == set(ids[:3])
    assert world.issuer.active() == {ids[3]}
    audited = [r.authorization_id for r in world.store.audit() if r.kind == "revoked_previous"]
    assert sorted(audited) == sorted(ids[:3])  # each once, through its rotation's tail
    assert notes == []


def test_a_young_unknown_marked_pat_is_a_problem_of_the_run(world: Harness) -> None:
    world.run()
    stranger = format_marker(token_name="flux-git", operation_id="f" * 32)
    world.issuer.add_external(display_name=stranger, age=HOUR / 4)
    report = world.run()
    [outcome] = report.outcomes
    assert outcome.kind is OutcomeKind.NOT_DUE
    assert not outcome.converged
    assert "still active" in outcome.problems[0]
    assert not report.ok


def test_a_stale_shared_listing_is_checked_again_before_rotating(world: Harness) -> None:
    world.run()
    shared = SharedListingIssuer(world.issuer)
    shared.list_marked(organization="contoso")  # listed before another run rotated the token
    world.run(force={"flux-git"})
    world.issuer = shared  # type: ignore[assignment]
    [outcome] = world.run().outcomes
    assert outcome.kind is OutcomeKind.NOT_DUE, outcome.reason
    assert outcome.converged, outcome.problems


def test_pure_rules() -> None:
    assert lost_current(None, set(), __import__("datetime").datetime.now()) is None
    current = Finding(
        kind=FindingKind.DRIFT, token_name="t", sink="kv", detail="changed", authorization_id="c"
    )
    other = Finding(kind=FindingKind.DRIFT, token_name="t", sink="kv", detail="serves PAT x")
    unread = Finding(kind=FindingKind.DRIFT, token_name="t", sink="kv", detail="could not read")
    assert drift_reasons([current, other, unread], "c") == ["drift in kv: serves PAT x"]


def test_a_previous_pat_past_its_grace_period_that_could_not_be_revoked_is_a_problem(
    world: Harness,
) -> None:
    world.run()
    first = world.current_id()
    world.advance(23 * DAY)
    world.run()  # rotates: the first PAT stays valid for its grace period
    world.advance(world.token.revoke_after + HOUR)
    for _ in range(3):  # the tail's revoke and any retry of it in the same run
        world.issuer.faults.fail("revoke", AzureDevOpsError("HTTP 503"))

    [outcome] = world.run().outcomes

    assert first in world.issuer.active()
    assert not outcome.converged, "a PAT past its grace period is still valid"
    assert any(str(first) in problem for problem in outcome.problems), outcome.problems


def test_an_unreadable_sink_does_not_hide_what_the_next_sink_serves(world: Harness) -> None:
    class Unreachable(FakeSink):
        def current_version(self) -> SinkVersion | None:
            raise SinkError("vault unreachable")

    world.run()
    current = world.current_id()
    world.sinks[0] = Unreachable("kv")
    meta = SinkWriteMeta(
        token_name="flux-git", authorization_id="pat-x", operation_id="0" * 32, valid_to=T0
    )
    world.sinks[1].write(Secret("someone else's"), meta)

    report = world.run()
    [outcome] = report.outcomes

    drift = {f.sink: f.authorization_id for f in report.findings if f.kind is FindingKind.DRIFT}
    assert drift == {"fake kv": None, "fake group": "pat-x"}, "the scan went on past kv"
    assert "fake kv: could not be read (vault unreachable)" in outcome.problems
    assert f"fake group serves PAT pat-x, not {current}" in outcome.problems


def test_a_sink_without_authorization_ids_is_judged_by_the_version_patwarden_wrote(
    tmp_path: Path,
) -> None:
    world = Harness(path=tmp_path / "s.db", sinks=[FakeSink("plain", tags=False)])

    [rotated] = world.run().outcomes
    world.advance(DAY)
    [later] = world.run().outcomes

    assert rotated.kind is OutcomeKind.ROTATED
    assert rotated.problems == ()
    assert later.kind is OutcomeKind.NOT_DUE
    assert later.problems == (), "the version patwarden wrote, recorded for the current PAT"


class CountingSink(FakeSink):
    """A fake sink that counts the reads of its version."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.reads = 0

    def current_version(self) -> SinkVersion | None:
        self.reads += 1
        return super().current_version()


def test_a_nothing_due_run_reads_each_sink_once_for_drift_and_its_end_check(
    tmp_path: Path,
) -> None:
    sinks = [CountingSink("kv"), CountingSink("group")]
    world = Harness(path=tmp_path / "s.db", sinks=list(sinks))
    world.run()
    world.advance(DAY)
    for sink in sinks:
        sink.reads = 0

    [idle] = world.run().outcomes
    assert idle.kind is OutcomeKind.NOT_DUE
    assert idle.problems == ()
    assert [sink.reads for sink in sinks] == [1, 1], "the end check reuses the drift check's read"

    sinks[1].faults.fail("current_version", SinkError("vault unreachable"))
    [unread] = world.run().outcomes
    assert unread.kind is OutcomeKind.NOT_DUE
    assert "fake group: could not be read (vault unreachable)" not in unread.problems
    assert sinks[1].reads == 3, "a read that failed is tried again at the end, not reused"

    meta = SinkWriteMeta(
        token_name="flux-git", authorization_id="pat-x", operation_id="0" * 32, valid_to=T0
    )
    sinks[1].write(Secret("someone else's"), meta)
    [repaired] = world.run().outcomes
    assert repaired.kind is OutcomeKind.ROTATED, "drift still makes the run rotate"
    assert repaired.problems == ()
