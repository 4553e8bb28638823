"""Reconcile (orphans, overdue revocations, drift, lost state) and adopt, through the engine."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from patwarden.domain.marker import format_marker
from patwarden.errors import AzureDevOpsError, SinkError
from patwarden.rotation.engine import RotationEngine
from patwarden.rotation.outcomes import FindingKind, OutcomeKind
from patwarden.rotation.ports import SinkWriteMeta
from patwarden.secret import Secret
from patwarden.state.sqlite import SqliteStateStore
from tests.rotation.fakes import T0, FakeSink, spec
from tests.rotation.harness import Harness

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


@pytest.fixture
def world(tmp_path: Path) -> Harness:
    return Harness(path=tmp_path / "state.db")


def _marker(token: str, n: int) -> str:
    return format_marker(token_name=token, operation_id=f"{n:032x}")


def test_orphans_older_than_the_margin_are_revoked_and_nothing_else(world: Harness) -> None:
    world.run()
    current = world.current_id()
    old_orphan = world.issuer.add_external(display_name=_marker("flux-git", 1), age=2 * HOUR)
    young_orphan = world.issuer.add_external(display_name=_marker("flux-git", 2), age=HOUR / 2)
    other_token = world.issuer.add_external(display_name=_marker("unconfigured", 3), age=DAY)
    by_hand = world.issuer.add_external(display_name="my laptop", age=DAY)

    report = world.run()

    assert report.outcomes[0].kind is OutcomeKind.NOT_DUE
    revoked = [f.authorization_id for f in report.findings if f.kind is FindingKind.ORPHAN_REVOKED]
    assert revoked == [old_orphan.authorization_id]
    assert world.issuer.active() == {
        current,
        young_orphan.authorization_id,
        other_token.authorization_id,
        by_hand.authorization_id,
    }


def test_a_marked_pat_a_sink_serves_is_not_an_orphan(world: Harness) -> None:
    world.run()
    stray = world.issuer.add_external(display_name=_marker("flux-git", 1), age=DAY)
    value = world.issuer.pats[stray.authorization_id].value
    extra = FakeSink("extra")
    world.sinks.append(extra)
    extra.write(Secret(value), _meta(stray.authorization_id))

    report = world.run()

    # Convergence: the new sink is drift, so the run rotates to put one PAT into every sink;
    # the stray PAT is revoked only after no sink serves it any more.
    [outcome] = report.outcomes
    assert outcome.kind is OutcomeKind.ROTATED, outcome
    assert outcome.converged, outcome.problems
    assert extra.value is not None
    assert world.issuer.id_of(extra.value) == world.current_id()
    assert stray.authorization_id not in world.issuer.active()
    kinds = [f.kind for f in report.findings]
    assert kinds.index(FindingKind.DRIFT) < kinds.index(FindingKind.ORPHAN_REVOKED)


def test_dry_run_reports_orphans_without_revoking(world: Harness) -> None:
    world.run()
    orphan = world.issuer.add_external(display_name=_marker("flux-git", 1), age=DAY)
    report = world.run(dry_run=True)
    assert report.outcomes[0].kind is OutcomeKind.NOT_DUE
    assert [f.kind for f in report.findings] == [FindingKind.ORPHAN_FOUND]
    assert orphan.authorization_id in world.issuer.active()


def test_several_orphans_are_revoked_in_one_run_and_one_failure_stops_none(
    world: Harness,
) -> None:
    world.run()
    current = world.current_id()
    orphans = [
        world.issuer.add_external(display_name=_marker("flux-git", n), age=n * DAY).authorization_id
        for n in (1, 2, 3)
    ]
    world.issuer.faults.fail("revoke", AzureDevOpsError("HTTP 503"))  # the first revoke only

    report = world.run()

    assert report.outcomes[0].kind is OutcomeKind.NOT_DUE
    by_kind = {f.authorization_id: f.kind for f in report.findings}
    assert by_kind == {
        orphans[0]: FindingKind.ORPHAN_FOUND,
        orphans[1]: FindingKind.ORPHAN_REVOKED,
        orphans[2]: FindingKind.ORPHAN_REVOKED,
    }
    assert world.issuer.active() == {current, orphans[0]}
    again = world.run()
    assert [(f.kind, f.authorization_id) for f in again.findings] == [
        (FindingKind.ORPHAN_REVOKED, orphans[0])
    ]
    assert world.issuer.active() == {current}


def test_dry_run_over_several_tokens_changes_nothing_anywhere(world: Harness) -> None:
    tokens = [spec("alpha"), spec("beta"), spec("gamma")]
    sinks = {t.name: [FakeSink(f"{t.name}-kv")] for t in tokens}
    engine = RotationEngine(
        issuer=world.issuer,
        store=world.store,
        clock=world.clock,
        sinks=lambda s: sinks[s.name],
        orphan_margin_seconds=world.margin,
    )
    engine.run(tokens[:2])  # alpha and beta are managed; gamma never ran
    orphans = {
        name: world.issuer.add_external(display_name=_marker(name, n), age=DAY).authorization_id
        for n, name in enumerate(("alpha", "beta"), 1)
    }
    world.advance(23 * DAY)  # alpha and beta are due
    active, created = world.issuer.active(), list(world.issuer.created)
    served = {name: [s.value for s in group] for name, group in sinks.items()}
    audit = len(list(world.store.audit()))

    report = engine.run(tokens, dry_run=True)

    assert [(o.token_name, o.kind) for o in report.outcomes] == [
        ("alpha", OutcomeKind.WOULD_ROTATE),
        ("beta", OutcomeKind.WOULD_ROTATE),
        ("gamma", OutcomeKind.WOULD_ROTATE),
    ]
    assert all(o.new_authorization_id is None for o in report.outcomes)
    assert [(f.kind, f.token_name, f.authorization_id) for f in report.findings] == [
        (FindingKind.ORPHAN_FOUND, "alpha", orphans["alpha"]),
        (FindingKind.ORPHAN_FOUND, "beta", orphans["beta"]),
    ]
    assert world.issuer.active() == active
    assert world.issuer.created == created
    assert {name: [s.value for s in group] for name, group in sinks.items()} == served
    assert world.store.load_token("gamma") is None
    assert len(list(world.store.audit())) == audit


def test_failed_orphan_revoke_is_reported_and_retried_next_run(world: Harness) -> None:
    world.run()
    orphan = world.issuer.add_external(display_name=_marker("flux-git", 1), age=DAY)
    world.issuer.faults.fail("revoke", AzureDevOpsError("HTTP 503"))
    report = world.run()
    assert report.outcomes[0].kind is OutcomeKind.NOT_DUE
    assert [f.kind for f in report.findings] == [FindingKind.ORPHAN_FOUND]
    assert "revoke failed: " in report.findings[0].detail
    again = world.run()
    assert again.outcomes[0].kind is OutcomeKind.NOT_DUE
    assert [f.kind for f in again.findings] == [FindingKind.ORPHAN_REVOKED]
    assert orphan.authorization_id not in world.issuer.active()


def test_listing_failure_skips_the_orphan_check_but_still_rotates(world: Harness) -> None:
    world.issuer.faults.fail("list_marked", AzureDevOpsError("HTTP 500"))
    report = world.run()
    assert report.outcomes[0].kind is OutcomeKind.ROTATED


def test_drift_is_repaired_by_a_rotation(world: Harness) -> None:
    world.run()
    current = world.current_id()
    world.sinks[0].write(Secret("hand-edited"), _meta("someone-else"))
    world.sinks[1].current = None

    report = world.run()

    drift = {f.sink: f.detail for f in report.findings if f.kind is FindingKind.DRIFT}
    assert "serves PAT someone-else" in drift["fake kv"]
    assert drift["fake group"] == "the sink is empty"
    [outcome] = report.outcomes
    assert outcome.kind is OutcomeKind.ROTATED, outcome
    assert outcome.converged, outcome.problems
    assert outcome.reason.startswith("drift in fake kv")
    assert outcome.replaced_authorization_id == current
    assert world.served_ids() == [world.current_id()] * 2 != [current] * 2


def test_drift_a_rotation_cannot_repair_is_a_problem_of_the_run(world: Harness) -> None:
    world.run()
    for _ in range(10):  # every read of this run
        world.sinks[1].faults.fail("current_version", SinkError("group unreachable"))
    report = world.run()
    [outcome] = report.outcomes
    assert outcome.kind is OutcomeKind.NOT_DUE
    assert not report.ok
    assert outcome.problems
    assert "could not be read" in outcome.problems[0]


def test_drift_without_authorization_ids_compares_versions(tmp_path: Path) -> None:
    world = Harness(path=tmp_path / "s.db", sinks=[FakeSink("plain", tags=False)])
    world.run()
    world.sinks[0].write(Secret("other"), _meta("x"))
    report = world.run()
    (finding,) = [f for f in report.findings if f.kind is FindingKind.DRIFT]
    assert "changed" in finding.detail
    assert report.outcomes[0].kind is OutcomeKind.ROTATED  # the drift is repaired
    assert world.served_ids() == [world.current_id()]


def test_previous_is_not_revoked_while_a_sink_still_serves_it(world: Harness) -> None:
    world.run()
    first = world.current_id()
    world.advance(23 * DAY)
    world.run()
    # Someone puts the old value back into one sink during the grace period.
    value = world.issuer.pats[first or ""].value
    world.sinks[1].write(Secret(value), _meta(first or ""))
    world.advance(2 * DAY)

    report = world.run()

    assert first in world.issuer.active()
    kinds = [f.kind for f in report.findings]
    assert FindingKind.REVOKE_DEFERRED in kinds
    assert FindingKind.DRIFT in kinds
    world.check_invariants()


def test_unreadable_sink_blocks_revocation_until_it_answers(world: Harness) -> None:
    world.run()
    first = world.current_id()
    world.advance(23 * DAY)
    world.run()
    world.advance(2 * DAY)
    world.sinks[0].faults.fail("current_version", SinkError("vault unreachable"))
    world.sinks[0].faults.fail("current_version", SinkError("vault unreachable"))
    blocked = world.run()
    assert blocked.outcomes[0].kind is OutcomeKind.NOT_DUE
    assert FindingKind.REVOKE_DEFERRED in [f.kind for f in blocked.findings]
    assert first in world.issuer.active()
    answered = world.run()
    assert answered.outcomes[0].kind is OutcomeKind.NOT_DUE
    assert [f.kind for f in answered.findings] == [FindingKind.REVOKED_PREVIOUS]
    assert first not in world.issuer.active()


def test_lost_state_is_detected_and_adopt_rebuilds_it(world: Harness, tmp_path: Path) -> None:
    world.run()
    current = world.current_id()
    stale = world.issuer.add_external(display_name=_marker("flux-git", 9), age=3 * DAY)
    world.store = SqliteStateStore(path=tmp_path / "fresh.db", now=world.clock.now)

    report = world.run()

    assert report.outcomes[0].kind is OutcomeKind.FAILED
    assert "patwarden adopt" in report.outcomes[0].reason
    assert [f.kind for f in report.findings] == [FindingKind.STATE_MISSING]
    assert len(world.issuer.created) == 1

    (result,) = world.engine().adopt([world.token])
    assert result.adopted
    assert result.current_authorization_id == current
    assert "metadata" in result.detail
    world.advance(2 * HOUR)
    after = world.run()
    assert after.outcomes[0].kind is OutcomeKind.NOT_DUE
    assert world.issuer.active() == {current}, "the stale marked PAT is an orphan"
    assert stale.authorization_id not in world.issuer.active()


def test_adopt_without_sink_metadata_takes_the_newest_marked_pat(tmp_path: Path) -> None:
    world = Harness(path=tmp_path / "s.db", sinks=[FakeSink("plain", tags=False)])
    older = world.issuer.add_external(display_name=_marker("flux-git", 1), age=3 * DAY)
    newer = world.issuer.add_external(display_name=_marker("flux-git", 2), age=DAY)
    (result,) = world.engine().adopt([world.token])
    assert result.current_authorization_id == newer.authorization_id
    assert "newest" in result.detail
    assert older.authorization_id != result.current_authorization_id
    [adopted] = [r for r in world.store.audit() if r.kind == "adopted"]
    assert adopted.authorization_id == newer.authorization_id
    assert adopted.operation_id == f"{2:032x}", "the audit names the operation in its marker"


def test_adopt_leaves_a_managed_token_alone_unless_asked(world: Harness) -> None:
    world.run()
    (result,) = world.engine().adopt([world.token])
    assert not result.adopted
    (forced,) = world.engine().adopt([world.token], replace_existing=True)
    assert forced.adopted


def _meta(pat_id: str) -> SinkWriteMeta:
    return SinkWriteMeta(
        token_name="x", authorization_id=pat_id, operation_id="0" * 32, valid_to=T0
    )


def test_adopt_with_no_marked_pat_records_the_token_as_due(world: Harness) -> None:
    (result,) = world.engine().adopt([world.token])

    assert result.adopted
    assert result.current_authorization_id is None
    assert "due at the next run" in result.detail
    state = world.store.load_token(world.token.name)
    assert state is not None
    assert state.current is None
    assert world.run().outcomes[0].kind is OutcomeKind.ROTATED


def test_an_orphan_whose_revoke_failed_is_a_problem_of_the_run(world: Harness) -> None:
    world.run()
    orphan = world.issuer.add_external(display_name=_marker("flux-git", 7), age=3 * HOUR)
    world.issuer.faults.fail("revoke", AzureDevOpsError("HTTP 503"))

    report = world.run()

    [outcome] = report.outcomes
    assert [f.kind for f in report.findings] == [FindingKind.ORPHAN_FOUND]
    assert orphan.authorization_id in world.issuer.active()
    assert not outcome.converged
    assert any(orphan.authorization_id in p for p in outcome.problems), outcome.problems


def test_a_sink_added_to_the_config_does_not_stop_the_drift_scan_of_the_others(
    world: Harness,
) -> None:
    world.run()
    world.sinks.insert(0, FakeSink("new"))  # added since: patwarden never wrote it
    world.sinks[2].write(Secret("someone else's"), _meta("pat-x"))

    report = world.run()

    drift = {f.sink: f.authorization_id for f in report.findings if f.kind is FindingKind.DRIFT}
    assert drift == {"fake new": None, "fake group": "pat-x"}


def test_a_nothing_due_sweep_reads_no_history_unless_a_pat_needs_it(
    world: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The orphan sweep reads every operation of the token (the PATs the journal knows) only
    when some marked PAT is not the state's: a quiet token's run does not grow with its history."""
    for _ in range(3):
        world.run(force=["flux-git"])
        world.advance(2 * DAY)  # past each grace period
    world.run()
    reads: list[bool] = []
    operations = world.store.operations

    def counted(name: str, *, unfinished: bool = False) -> object:
        reads.append(unfinished)
        return operations(name, unfinished=unfinished)

    monkeypatch.setattr(world.store, "operations", counted)
    [quiet] = world.run().outcomes
    assert quiet.kind is OutcomeKind.NOT_DUE
    assert False not in reads, "the whole history was read"

    orphan = world.issuer.add_external(display_name=_marker("flux-git", 9), age=2 * HOUR)
    report = world.run()
    assert False in reads, "a candidate orphan: the history is read to judge it"
    revoked = [f.authorization_id for f in report.findings if f.kind is FindingKind.ORPHAN_REVOKED]
    assert revoked == [orphan.authorization_id]
