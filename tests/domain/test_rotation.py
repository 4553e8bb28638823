"""The pure rotation state machine: table tests per step and a Hypothesis stateful model.

The stateful test drives :func:`transition` against a tiny world (PATs that exist or are revoked,
sinks that serve one PAT each) through random interleavings of successes, failures, crashes
(before or after an action took effect) and time passing, and checks the safety rules after
every step.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import hypothesis
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from patwarden.domain import messages as m
from patwarden.domain.models import IssuedPat, SinkRecord
from patwarden.domain.operation import Operation, Outcome, SinkProgress, SinkStatus, Step
from patwarden.domain.rotation import InvalidTransition, transition

T0 = datetime(2026, 1, 1, tzinfo=UTC)
GRACE = timedelta(hours=6)


def _pat(pat_id: str) -> IssuedPat:
    return IssuedPat(
        authorization_id=pat_id,
        display_name=f"patwarden:t:{'a' * 32}",
        valid_from=T0,
        valid_to=T0 + timedelta(days=30),
    )


def _op(**changes: object) -> Operation:
    op = Operation(
        operation_id="a" * 32,
        token_name="t",
        organization="contoso",
        display_name=f"patwarden:t:{'a' * 32}",
        scopes=("vso.code",),
        requested_valid_to=T0 + timedelta(days=30),
        revoke_after=GRACE,
        started_at=T0,
        previous=_pat("old"),
        sinks=(SinkProgress(sink="kv"), SinkProgress(sink="file")),
    )
    return replace(op, **changes)  # type: ignore[arg-type]


def _rec(sink: str, pat_id: str, ref: str) -> SinkRecord:
    return SinkRecord(sink=sink, authorization_id=pat_id, ref=ref)


RESUME = m.Resume(at=T0, has_secret=True)
MOSTLY_OK = st.integers(0, 9).map(lambda n: n > 1)  # 80% of actions succeed
LOST = m.Resume(at=T0, has_secret=False)


def test_every_step_has_a_documented_value() -> None:
    assert [s.value for s in Step] == [
        "planned",
        "creating",
        "created",
        "distributing",
        "distributed",
        "verifying",
        "verified",
        "promoted",
        "revoke_pending",
        "revoked",
        "done",
        "rolling_back",
        "failed",
    ]
    assert {s for s in Step if s.is_terminal} == {Step.DONE, Step.FAILED}
    assert {s for s in Step if s.is_tail} == {Step.REVOKE_PENDING, Step.REVOKED}


def test_happy_path_one_action_at_a_time() -> None:
    t = transition(_op(), LOST)
    assert (t.state.step, t.action) == (Step.CREATING, m.CreatePat())
    t = transition(t.state, m.PatCreated(pat=_pat("new")))
    assert (t.state.step, t.action) == (Step.CREATED, m.Proceed())
    t = transition(t.state, RESUME)
    assert (t.state.step, t.action) == (Step.DISTRIBUTING, m.Proceed())
    t = transition(t.state, RESUME)
    assert t.action == m.CapturePrevious("kv")
    t = transition(t.state, m.PreviousCaptured(sink="kv", version=_rec("kv", "old", "v1")))
    assert t.state.sink("kv").status is SinkStatus.WRITING
    assert t.action == m.WriteSink("kv")
    t = transition(t.state, m.SinkWritten(sink="kv", version=_rec("kv", "new", "v2")))
    assert t.action == m.CapturePrevious("file")
    t = transition(t.state, m.PreviousCaptured(sink="file", version=None))
    t = transition(t.state, m.SinkWritten(sink="file", version=_rec("file", "new", "f1")))
    assert (t.state.step, t.action) == (Step.DISTRIBUTED, m.Proceed())
    t = transition(t.state, RESUME)
    t = transition(t.state, RESUME)
    assert (t.state.step, t.action) == (Step.VERIFYING, m.VerifyPat())
    t = transition(t.state, m.PatVerified())
    assert t.action == m.ReadBack("kv")
    t = transition(t.state, m.ReadBackDone(sink="kv", matched=True))
    t = transition(t.state, m.ReadBackDone(sink="file", matched=None))
    assert (t.state.step, t.action) == (Step.VERIFIED, m.Proceed())
    t = transition(t.state, RESUME)
    assert (t.state.step, t.action) == (Step.PROMOTED, m.PromoteToken())
    t = transition(t.state, m.TokenPromoted(at=T0))
    assert (t.state.step, t.action, t.state.revoke_at) == (
        Step.REVOKE_PENDING,
        m.Wait(),
        T0 + GRACE,
    )
    t = transition(t.state, m.Resume(at=T0 + GRACE, has_secret=False))
    assert t.action == m.RevokePat("old")
    t = transition(t.state, m.PatRevoked(authorization_id="old", at=T0 + GRACE))
    assert (t.state.step, t.state.outcome, t.action) == (Step.DONE, Outcome.ROTATED, None)
    assert t.state.revoked_at == T0 + GRACE


# --- the tail: revoke, audit (with the step), tag ----------------------------------------------


def _pending() -> Operation:
    kv = SinkProgress(sink="kv", status=SinkStatus.CONFIRMED)
    return _op(step=Step.REVOKE_PENDING, new=_pat("new"), revoke_at=T0, sinks=(kv,))


def test_a_revocation_is_journaled_then_each_tagging_sink_tags_it() -> None:
    revoked_at = T0 + timedelta(minutes=1)
    t = transition(
        _pending(), m.PatRevoked(authorization_id="old", at=revoked_at, tag_in=("kv", "kv2"))
    )
    assert (t.state.step, t.state.untagged, t.state.revoked_at) == (
        Step.REVOKED,
        ("kv", "kv2"),
        revoked_at,
    )
    assert t.action == m.TagRevoked("kv", "old", revoked_at)
    t = transition(t.state, m.RevocationTagged(sink="kv"))
    assert (t.state.step, t.action) == (Step.REVOKED, m.TagRevoked("kv2", "old", revoked_at))
    t = transition(t.state, m.TagFailed(sink="kv2", reason="403"))
    assert (t.state.step, t.state.outcome, t.action) == (Step.DONE, Outcome.ROTATED, None)


def test_without_a_sink_that_tags_the_revocation_finishes_at_once() -> None:
    t = transition(_pending(), m.PatRevoked(authorization_id="old", at=T0))
    assert (t.state.step, t.state.outcome, t.action) == (Step.DONE, Outcome.ROTATED, None)


def test_resume_in_revoked_tags_again_with_the_journaled_stamp() -> None:
    revoked_at = T0 + timedelta(minutes=1)
    op = replace(_pending(), step=Step.REVOKED, revoked_at=revoked_at, untagged=("kv",))
    later = m.Resume(at=T0 + timedelta(days=3), has_secret=False)
    t = transition(op, later)
    assert (t.state, t.action) == (op, m.TagRevoked("kv", "old", revoked_at))


def test_a_tag_from_a_sink_not_waiting_for_it_is_refused() -> None:
    op = replace(_pending(), step=Step.REVOKED, revoked_at=T0, untagged=("kv",))
    with pytest.raises(InvalidTransition):
        transition(op, m.RevocationTagged(sink="file"))
    with pytest.raises(InvalidTransition):
        transition(_pending(), m.RevocationTagged(sink="kv"))


def test_without_a_previous_pat_promotion_finishes() -> None:
    t = transition(_op(step=Step.PROMOTED, previous=None, new=_pat("new")), m.TokenPromoted(at=T0))
    assert (t.state.step, t.state.outcome) == (Step.DONE, Outcome.ROTATED)


def test_lost_create_is_looked_up_by_marker() -> None:
    t = transition(_op(step=Step.CREATING), m.CreateUnknown(reason="reset"))
    assert t.action == m.FindMarked()
    missing = transition(t.state, m.MarkedMissing())
    assert (missing.state.step, missing.state.outcome) == (Step.FAILED, Outcome.FAILED)
    found = transition(t.state, m.MarkedFound(pat=_pat("new")))
    after = transition(found.state, LOST)
    assert (after.state.step, after.action) == (Step.ROLLING_BACK, m.RevokePat("new"))


def test_resume_in_creating_checks_the_marker_first() -> None:
    assert transition(_op(step=Step.CREATING), LOST).action == m.FindMarked()


def test_resume_without_the_value_recovers_it_from_a_sink_that_holds_it() -> None:
    kv = SinkProgress(sink="kv", status=SinkStatus.WRITTEN, written=_rec("kv", "new", "v2"))
    op = _op(step=Step.DISTRIBUTING, new=_pat("new"), sinks=(kv, SinkProgress(sink="file")))
    t = transition(op, LOST)
    assert t.action == m.RecoverSecret(("kv",))
    assert transition(t.state, m.SecretRecovered(sink="kv")).action == m.CapturePrevious("file")
    lost = transition(t.state, m.SecretLost(reason="unreadable"))
    assert (lost.state.step, lost.action) == (Step.ROLLING_BACK, m.RestoreSink("kv"))


def test_write_failure_restores_touched_sinks_then_revokes_new() -> None:
    kv = SinkProgress(sink="kv", status=SinkStatus.WRITTEN, previous=_rec("kv", "old", "v1"))
    op = _op(step=Step.DISTRIBUTING, new=_pat("new"), sinks=(kv, SinkProgress(sink="file")))
    t = transition(op, m.SinkFailed(sink="file", reason="denied"))
    assert (t.state.step, t.action) == (Step.ROLLING_BACK, m.RestoreSink("kv"))
    assert t.state.reason == "sink file: denied"
    t = transition(t.state, m.SinkRestored(sink="kv"))
    assert t.action == m.RevokePat("new")
    t = transition(t.state, m.PatRevoked(authorization_id="new", at=T0))
    assert (t.state.step, t.state.outcome, t.state.new_revoked) == (
        Step.FAILED,
        Outcome.ROLLED_BACK,
        True,
    )


def test_failed_restore_strands_the_new_pat_instead_of_revoking_it() -> None:
    kv = SinkProgress(sink="kv", status=SinkStatus.WRITTEN)
    op = _op(step=Step.ROLLING_BACK, new=_pat("new"), sinks=(kv,), reason="verify failed")
    t = transition(op, m.RestoreFailed(sink="kv", reason="no versions"))
    assert (t.state.step, t.state.outcome, t.action) == (Step.FAILED, Outcome.STRANDED, None)
    assert "kv" in (t.state.note or "")


def test_revoke_failure_while_pending_waits_for_a_later_run() -> None:
    op = _op(step=Step.REVOKE_PENDING, new=_pat("new"), revoke_at=T0)
    t = transition(op, m.RevokeFailed(authorization_id="old", reason="kv still serves it"))
    assert (t.state.step, t.action, t.state.note) == (
        Step.REVOKE_PENDING,
        m.Wait(),
        "kv still serves it",
    )


@pytest.mark.parametrize(
    ("step", "event"),
    [
        (Step.CREATING, m.PatVerified()),
        (Step.DISTRIBUTING, m.PatCreated(pat=_pat("x"))),
        (Step.REVOKE_PENDING, m.PatRevoked(authorization_id="not-the-previous", at=T0)),
    ],
)
def test_events_that_do_not_belong_are_refused(step: Step, event: m.Event) -> None:
    with pytest.raises(InvalidTransition):
        transition(_op(step=step, new=_pat("new")), event)


def test_finished_operations_accept_only_resume() -> None:
    done = _op(step=Step.DONE, outcome=Outcome.ROTATED)
    assert transition(done, LOST).action is None
    with pytest.raises(InvalidTransition):
        transition(done, m.PatVerified())


# --- the stateful model ------------------------------------------------------------------------


class RotationModel(RuleBasedStateMachine):
    """A world of PATs and two sinks; the machine must keep it safe whatever happens."""

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.revoked: set[str] = set()
        self.existing: set[str] = {"old"}
        self.serves: dict[str, str | None] = {"kv": "old", "file": "old"}
        self.refs: dict[str, str] = {"kv": "kv-0", "file": "file-0"}
        self.history: dict[str, dict[str, str]] = {"kv": {"kv-0": "old"}, "file": {"file-0": "old"}}
        self.readable = {"kv": True, "file": False}
        self.tags: dict[str, set[str]] = {"kv": set()}  # PATs whose kv versions carry revokedAt
        self.tag_failures = 0
        self.secret: str | None = None
        self.created = 0
        self.verified: set[str] = set()
        self.persisted = _op()
        self._apply(LOST)

    # The machine's contract: persist the state, then the one action.
    def _apply(self, event: m.Event) -> None:
        t = transition(self.persisted, event)
        self.persisted = t.state
        self.pending = t.action

    def _new_id(self) -> str:
        return self.persisted.new.authorization_id if self.persisted.new else "?"

    def _write(self, sink: str, pat_id: str) -> str:
        ref = f"{sink}-{len(self.history[sink])}"
        self.history[sink][ref] = pat_id
        self.refs[sink], self.serves[sink] = ref, pat_id
        return ref

    def _effect(self, action: m.Action, ok: bool) -> m.Event:
        match action:
            case m.CreatePat():
                self.created += 1
                pat = replace(_pat(f"new{self.created}"), display_name=self.persisted.display_name)
                self.existing.add(pat.authorization_id)
                self.secret = pat.authorization_id
                self.lost_create = pat
                return m.PatCreated(pat=pat)
            case m.FindMarked():
                found = getattr(self, "lost_create", None)
                if found is not None and found.authorization_id not in self.revoked:
                    return m.MarkedFound(pat=found)
                return m.MarkedMissing()
            case m.Proceed():
                return m.Resume(at=self.now, has_secret=self.secret is not None)
            case m.RecoverSecret(sinks=keys):
                for key in keys:
                    if self.serves[key] == self._new_id() and self.readable[key] and ok:
                        self.secret = self._new_id()
                        return m.SecretRecovered(sink=key)
                return m.SecretLost(reason="unreadable")
            case m.CapturePrevious(sink=key):
                if not ok:
                    return m.SinkFailed(sink=key, reason="cannot read version")
                pat_id = self.serves[key]
                version = None if pat_id is None else _rec(key, pat_id, self.refs[key])
                return m.PreviousCaptured(sink=key, version=version)
            case m.WriteSink(sink=key):
                assert self.secret == self._new_id(), "asked to write a value it does not hold"
                if not ok:
                    return m.SinkFailed(sink=key, reason="denied")
                ref = self._write(key, self.secret)
                return m.SinkWritten(sink=key, version=_rec(key, self.secret, ref))
            case m.VerifyPat():
                assert self.secret is not None
                if ok:
                    self.verified.add(self.secret)
                return m.PatVerified() if ok else m.VerifyFailed(reason="401")
            case m.ReadBack(sink=key):
                if not self.readable[key]:
                    return m.ReadBackDone(sink=key, matched=None)
                return m.ReadBackDone(sink=key, matched=self.serves[key] == self.secret and ok)
            case m.PromoteToken():
                return m.TokenPromoted(at=self.now)
            case m.RevokePat(authorization_id=pat_id):
                # No guard here: the machine alone must never ask to revoke a served PAT.
                if not ok:
                    return m.RevokeFailed(authorization_id=pat_id, reason="error")
                self.revoked.add(pat_id)
                return m.PatRevoked(authorization_id=pat_id, at=self.now, tag_in=("kv",))
            case m.TagRevoked(sink=key, authorization_id=pat_id):
                assert pat_id in self.revoked, "tagged a PAT that is not revoked"
                if not ok:
                    self.tag_failures += 1
                    return m.TagFailed(sink=key, reason="403")
                self.tags[key].add(pat_id)  # idempotent, like Key Vault's mark_revoked
                return m.RevocationTagged(sink=key)
            case m.RestoreSink(sink=key):
                progress = self.persisted.sink(key)
                if self.serves[key] != self._new_id():
                    return m.SinkRestored(sink=key)
                if not ok:
                    return m.RestoreFailed(sink=key, reason="cannot")
                prev = progress.previous
                if prev is None:
                    self.serves[key] = None
                else:
                    self.refs[key], self.serves[key] = prev.ref or "", prev.authorization_id
                return m.SinkRestored(sink=key)
        raise AssertionError(action)

    @precondition(lambda self: self.pending is not None and not isinstance(self.pending, m.Wait))
    @rule(ok=MOSTLY_OK)
    def act(self, ok: bool) -> None:
        assert self.pending is not None
        self._apply(self._effect(self.pending, ok))

    @precondition(lambda self: self.pending is not None and not isinstance(self.pending, m.Wait))
    @rule()
    def act_successfully(self) -> None:
        """A second, always-successful rule, so most runs also reach the end of the protocol."""
        self.act(True)

    @precondition(lambda self: self.pending is not None and not isinstance(self.pending, m.Wait))
    @rule(ok=MOSTLY_OK, effect_happened=st.booleans())
    def crash(self, ok: bool, effect_happened: bool) -> None:
        """The process dies before or after the pending action took effect."""
        assert self.pending is not None
        if effect_happened:
            self._effect(self.pending, ok)
        self.secret = None
        self._apply(m.Resume(at=self.now, has_secret=False))

    @rule()
    def time_passes(self) -> None:
        self.now += GRACE
        if isinstance(self.pending, m.Wait):
            self._apply(m.Resume(at=self.now, has_secret=self.secret is not None))

    @invariant()
    def never_revoke_what_a_sink_serves(self) -> None:
        for sink, pat_id in self.serves.items():
            assert pat_id not in self.revoked, f"{sink} serves revoked {pat_id}"

    @invariant()
    def old_stays_valid_until_every_sink_holds_and_confirmed_the_new(self) -> None:
        if "old" in self.revoked:
            op = self.persisted
            # REVOKE_PENDING too: the revoke may have happened just before a crash.
            assert op.step in (Step.REVOKE_PENDING, Step.REVOKED, Step.DONE)
            assert op.revoke_at is not None
            assert self.now >= op.revoke_at, "revoked before revoke_after passed"
            assert all(p.status is SinkStatus.CONFIRMED for p in op.sinks)
            assert set(self.serves.values()) == {op.new.authorization_id if op.new else None}

    @invariant()
    def at_most_one_current(self) -> None:
        op = self.persisted
        promoted = op.step in (Step.PROMOTED, Step.REVOKE_PENDING, Step.REVOKED, Step.DONE)
        if promoted:
            assert op.new is not None
            assert op.new.authorization_id in self.verified, "promoted an unverified PAT"
            assert set(self.serves.values()) == {op.new.authorization_id}
            hypothesis.event(f"reached {op.step.value}")
        if op.step.is_terminal:
            hypothesis.event(f"finished {op.outcome}")
        if op.step is Step.FAILED and op.outcome is Outcome.ROLLED_BACK and op.new_revoked:
            assert set(self.serves.values()) == {"old"}
        if not promoted:
            assert "old" not in self.revoked

    @invariant()
    def a_revocation_is_journaled_before_it_is_tagged_and_done_only_once_tagged(self) -> None:
        op = self.persisted
        if op.step in (Step.REVOKED, Step.DONE) and op.previous is not None:
            assert op.revoked_at is not None
            assert "old" in self.revoked
        if op.step is Step.REVOKED:
            assert op.untagged, "nothing left to tag, yet not done"
        if op.step is Step.DONE and op.outcome is Outcome.ROTATED:
            assert not op.untagged
            # Tagged unless the attempt failed (reported); a crash never skips the tag.
            assert "old" in self.tags["kv"] or self.tag_failures, "done without tagging"
            hypothesis.event("tagged" if "old" in self.tags["kv"] else "tag failed (reported)")

    @invariant()
    def at_most_one_pat_in_flight(self) -> None:
        live_new = {p for p in self.existing - self.revoked if p != "old"}
        assert len(live_new) <= 1


TestRotationModel = RotationModel.TestCase
TestRotationModel.settings = settings(
    database=None,  # no .hypothesis directory in the work tree
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
