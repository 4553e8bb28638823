"""A crash at every step of a rotation, followed by a fresh engine on the same state file.

The crash is a BaseException raised from a fake, before or after the call took effect.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from patwarden.errors import AzureDevOpsError
from patwarden.rotation.outcomes import FindingKind, OutcomeKind
from tests.rotation.fakes import Crash, spec
from tests.rotation.harness import Harness, rotate_once

DAY = timedelta(days=1)


@pytest.fixture
def world(tmp_path: Path) -> Harness:
    return Harness(path=tmp_path / "state.db")


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
    first = rotate_once(world)
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


def test_a_sink_removed_while_a_rotation_was_interrupted_does_not_stop_the_next_run(
    tmp_path: Path,
) -> None:
    world = Harness(path=tmp_path / "s.db", token=spec(revoke_after=timedelta(0)))
    first = rotate_once(world)
    world.advance(23 * DAY)
    world.sinks[1].faults.fail("write", Crash())  # the first sink holds the new PAT
    with pytest.raises(Crash):
        world.run()
    world.sinks = [world.sinks[1]]  # the configuration no longer names the first sink
    world.store = type(world.store)(path=world.path, now=world.clock.now)

    report = world.run()

    assert report.outcomes[0].kind is OutcomeKind.ROTATED
    assert FindingKind.RESUMED in [f.kind for f in report.findings]
    current = world.current_id()
    assert current not in (None, first)
    assert world.served_ids() == [current]
    world.check_invariants()


def test_a_crash_in_a_hook_after_promotion_resumes_without_promoting_twice(
    world: Harness,
) -> None:
    def crash(spec: object, promotion: object) -> tuple[str, ...]:
        raise Crash

    with pytest.raises(Crash):
        world.engine(on_promoted=crash).run([world.token])
    world.store = type(world.store)(path=world.path, now=world.clock.now)

    report = world.run()

    [created] = world.issuer.created
    assert world.current_id() == created
    assert report.outcomes[0].kind is OutcomeKind.NOT_DUE
    assert [r.kind for r in world.store.audit()].count("promoted") == 1
    assert world.served_ids() == [created, created]
