"""The rotation engine against in-memory fakes and a real SQLite state file: a run's life.

Issue, schedule, grace period, dry run, force, lock, hooks, plan, audit and secrets. Failures and
rollbacks are in test_engine_rollback.py, a crash at every step in test_engine_crash.py.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from patwarden.domain.models import TokenSpec
from patwarden.errors import SinkError
from patwarden.rotation.engine import RotationEngine
from patwarden.rotation.outcomes import FindingKind, OutcomeKind, Promotion
from tests.rotation.fakes import FakeSink, spec
from tests.rotation.harness import Harness, rotate_once

DAY = timedelta(days=1)


@pytest.fixture
def world(tmp_path: Path) -> Harness:
    return Harness(path=tmp_path / "state.db")


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
    first = rotate_once(world)
    world.advance(22 * DAY)

    report = world.run()

    assert report.outcomes[0].kind is OutcomeKind.NOT_DUE
    assert report.outcomes[0].due_at == world.clock.now() + DAY
    assert world.current_id() == first
    assert len(world.issuer.created) == 1


def test_rotation_keeps_previous_valid_until_revoke_after(world: Harness) -> None:
    first = rotate_once(world)
    world.advance(23 * DAY)

    second = rotate_once(world)

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
    first = rotate_once(world)
    world.advance(23 * DAY)
    rotate_once(world)
    assert first not in world.issuer.active()


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
    first = rotate_once(world)
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
    rotate_once(world)
    world.advance(23 * DAY)
    world.sinks[1].faults.fail("write", SinkError("boom"))
    report = world.run()
    world.store.close()
    blob = b"".join(p.read_bytes() for p in world.path.parent.glob("state.db*") if p.is_file())
    for entry in world.issuer.pats.values():
        assert entry.value.encode() not in blob
        assert entry.value not in repr(report)
        assert entry.value not in str(report.to_json())


def test_plan_says_why_without_changing_anything(world: Harness) -> None:
    (before,) = world.engine().plan([world.token])
    assert before.decision.is_due
    assert before.state is None
    rotate_once(world)
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


def test_each_step_is_audited_once_per_operation(world: Harness) -> None:
    rotate_once(world)
    world.advance(23 * DAY)
    world.run()  # rotates again; the previous PAT waits for its grace period
    world.run()  # still within the grace period: nothing new to audit
    world.advance(world.token.revoke_after + timedelta(seconds=1))
    world.run()  # the grace period is over: the previous PAT is revoked
    kinds = [(r.kind, r.operation_id) for r in world.store.audit()]
    assert len(kinds) == len(set(kinds)), kinds
    assert sum(kind == "operation_revoke_pending" for kind, _ in kinds) == 1


def test_plan_tells_a_revoked_current_pat_from_a_token_never_issued(world: Harness) -> None:
    (fresh,) = world.engine().plan([world.token])
    rotate_once(world)
    world.engine().revoke(world.token, previous=False, where="s.db")

    (revoked,) = world.engine().plan([world.token])

    assert fresh.decision.is_due
    assert "revoked or lost" not in fresh.decision.reason
    assert revoked.decision.is_due
    assert revoked.decision.reason.startswith("no current PAT (it was revoked or lost)")
