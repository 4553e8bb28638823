"""Rotation as an explicit, resumable state machine (AWS-style steps plus a write-ahead log).

One :class:`Operation` is one rotation of one token. :func:`transition` is pure: it maps the
persisted operation and an event (what an action produced) to the next operation and at most one
action. The engine persists the new operation *before* it performs the action, so a crash at any
point leaves a journal from which :class:`Resume` continues: the next action depends only on the
persisted operation and on whether the new PAT's value is still in memory (it is never stored).

Safety rules encoded here:
- the previous PAT is revoked only after every sink holds and confirmed the new one;
- on any distribution or verification failure, every sink we touched is restored first, and the
  new PAT is revoked only if no sink still serves it;
- a PAT is never revoked while the operation records a sink serving it.

The tail after promotion is journaled like every other step: ``revoke_pending`` waits for the
grace period; the revocation moves the operation to ``revoked`` (the engine writes the
``revoked_previous`` audit record in the same transaction as that step); then each sink that keeps
revocation tags tags the revoked PAT's versions, one journaled action each, before ``done``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from patwarden.domain.messages import (
    Action,
    CapturePrevious,
    CreateFailed,
    CreatePat,
    CreateUnknown,
    Event,
    FindMarked,
    MarkedFound,
    MarkedMissing,
    PatCreated,
    PatRevoked,
    PatVerified,
    PreviousCaptured,
    Proceed,
    PromoteToken,
    ReadBack,
    ReadBackDone,
    RecoverSecret,
    RestoreFailed,
    RestoreSink,
    Resume,
    RevocationTagged,
    RevokeFailed,
    RevokePat,
    SecretLost,
    SecretRecovered,
    SinkFailed,
    SinkRestored,
    SinkWritten,
    TagFailed,
    TagRevoked,
    TokenPromoted,
    VerifyFailed,
    VerifyPat,
    Wait,
    WriteSink,
)
from patwarden.domain.operation import Operation, Outcome, SinkStatus, Step

__all__ = ["InvalidTransition", "Step", "Transition", "transition"]


@dataclass(frozen=True)
class Transition:
    """The next operation to persist and the one action to perform after persisting it."""

    state: Operation
    action: Action | None


class InvalidTransition(Exception):  # a programming error, not a user error
    """An event arrived that the operation's step cannot accept (a bug in the caller)."""


def transition(op: Operation, event: Event) -> Transition:
    """Return the next operation and action for ``event`` arriving at ``op``.

    Raises:
        InvalidTransition: the event does not belong to the operation's step.
    """
    if op.step.is_terminal:
        if isinstance(event, Resume):
            return Transition(op, None)
        raise InvalidTransition(f"{type(event).__name__} after {op.operation_id} finished")
    if isinstance(event, Resume):
        return _next(op, at=event.at, has_secret=event.has_secret)
    return _apply(op, event)


def _apply(op: Operation, event: Event) -> Transition:
    step = op.step
    match event:
        case PatCreated(pat=pat) if step is Step.CREATING:
            return Transition(replace(op, step=Step.CREATED, new=pat), Proceed())
        case CreateFailed(reason=reason) if step is Step.CREATING:
            return _finish(op, Outcome.FAILED, reason)
        case CreateUnknown(reason=reason) if step is Step.CREATING:
            return Transition(replace(op, note=reason), FindMarked())
        case MarkedFound(pat=pat) if step is Step.CREATING:
            return Transition(replace(op, step=Step.CREATED, new=pat), Proceed())
        case MarkedMissing() if step is Step.CREATING:
            return _finish(op, Outcome.FAILED, "the create did not complete; nothing to clean up")
        case SecretRecovered() if step in (Step.DISTRIBUTING, Step.VERIFYING):
            return _next(op, at=op.started_at, has_secret=True)
        case SecretLost(reason=reason) if step in (Step.CREATED, Step.DISTRIBUTING, Step.VERIFYING):
            return _roll_back(op, reason)
        case PreviousCaptured(sink=key, version=version) if step is Step.DISTRIBUTING:
            progress = replace(op.sink(key), status=SinkStatus.WRITING, previous=version)
            return Transition(op.with_sink(progress), WriteSink(key))
        case SinkWritten(sink=key, version=version) if step is Step.DISTRIBUTING:
            progress = replace(op.sink(key), status=SinkStatus.WRITTEN, written=version)
            return _next(op.with_sink(progress), at=op.started_at, has_secret=True)
        case SinkFailed(sink=key, reason=reason) if step in (Step.DISTRIBUTING, Step.VERIFYING):
            return _roll_back(op, f"sink {key}: {reason}")
        case PatVerified() if step is Step.VERIFYING:
            return _next(replace(op, pat_verified=True), at=op.started_at, has_secret=True)
        case VerifyFailed(reason=reason) if step is Step.VERIFYING:
            return _roll_back(op, f"the new PAT did not work: {reason}")
        case ReadBackDone(sink=key, matched=matched) if step is Step.VERIFYING:
            if matched is False:
                return _roll_back(op, f"sink {key} returned a different value when read back")
            progress = replace(op.sink(key), status=SinkStatus.CONFIRMED, read_back=matched)
            return _next(op.with_sink(progress), at=op.started_at, has_secret=True)
        case TokenPromoted(at=at) if step is Step.PROMOTED:
            promoted = replace(op, step=Step.REVOKE_PENDING, revoke_at=at + op.revoke_after)
            return _next(promoted, at=at, has_secret=False)
        case PatRevoked(authorization_id=pat_id, at=at, tag_in=sinks) if (
            step is Step.REVOKE_PENDING
        ):
            _expect(op.previous is not None and pat_id == op.previous.authorization_id, op, event)
            revoked = replace(op, step=Step.REVOKED, revoked_at=at, untagged=sinks)
            return _next(revoked, at=at, has_secret=False)
        case RevocationTagged(sink=key) | TagFailed(sink=key) if step is Step.REVOKED:
            _expect(key in op.untagged, op, event)
            left = tuple(sink for sink in op.untagged if sink != key)
            return _next(replace(op, untagged=left), at=op.started_at, has_secret=False)
        case PatRevoked(authorization_id=pat_id) if step is Step.ROLLING_BACK:
            _expect(op.new is not None and pat_id == op.new.authorization_id, op, event)
            return _finish(replace(op, new_revoked=True), Outcome.ROLLED_BACK, op.reason)
        case RevokeFailed(reason=reason) if step is Step.REVOKE_PENDING:
            return Transition(replace(op, note=reason), Wait())
        case RevokeFailed(authorization_id=pat_id, reason=reason) if step is Step.ROLLING_BACK:
            note = f"the new PAT {pat_id} is still valid ({reason}); reconcile revokes it later"
            return _finish(replace(op, note=note), Outcome.ROLLED_BACK, op.reason)
        case SinkRestored(sink=key) if step is Step.ROLLING_BACK:
            progress = replace(op.sink(key), status=SinkStatus.RESTORED)
            return _next(op.with_sink(progress), at=op.started_at, has_secret=False)
        case RestoreFailed(sink=key, reason=reason) if step is Step.ROLLING_BACK:
            progress = replace(op.sink(key), status=SinkStatus.STUCK)
            note = f"sink {key} could not be restored ({reason})"
            return _next(op.with_sink(progress).noted(note), at=op.started_at, has_secret=False)
    raise InvalidTransition(f"{type(event).__name__} cannot arrive at step {step.value}")


def _expect(condition: bool, op: Operation, event: Event) -> None:
    if not condition:
        raise InvalidTransition(f"{event!r} does not belong to operation {op.operation_id}")


def _finish(
    op: Operation, outcome: Outcome, reason: str | None, *, step: Step = Step.FAILED
) -> Transition:
    return Transition(replace(op, step=step, outcome=outcome, reason=reason), None)


def _roll_back(op: Operation, reason: str) -> Transition:
    rolling = replace(op, step=Step.ROLLING_BACK, reason=reason)
    return _next(rolling, at=op.started_at, has_secret=False)


def _next(op: Operation, *, at: datetime, has_secret: bool) -> Transition:
    """Return the action the persisted ``op`` calls for: the resume rule of every step."""
    match op.step:
        case Step.PLANNED:
            return Transition(replace(op, step=Step.CREATING), CreatePat())
        case Step.CREATING:
            # Only reached on resume: the create may have happened before the crash.
            return Transition(op, FindMarked())
        case Step.CREATED:
            if not has_secret:
                return _roll_back(op, _LOST)
            return Transition(replace(op, step=Step.DISTRIBUTING), Proceed())
        case Step.DISTRIBUTING:
            return _distribute(op, has_secret=has_secret)
        case Step.DISTRIBUTED:
            return Transition(replace(op, step=Step.VERIFYING), Proceed())
        case Step.VERIFYING:
            return _verify(op, has_secret=has_secret)
        case Step.VERIFIED | Step.PROMOTED:
            return Transition(replace(op, step=Step.PROMOTED), PromoteToken())
        case Step.REVOKE_PENDING:
            if op.previous is None:
                return _finish(op, Outcome.ROTATED, None, step=Step.DONE)
            if op.revoke_at is None or at < op.revoke_at:
                return Transition(op, Wait())
            return Transition(op, RevokePat(op.previous.authorization_id))
        case Step.REVOKED:
            return _tag(op, at=at)
        case Step.ROLLING_BACK:
            return _rollback_next(op)
        case Step.DONE | Step.FAILED:
            return Transition(op, None)


_LOST = (
    "interrupted after the new PAT was created; its value was only in memory and no sink that "
    "holds it can be read back"
)


def _distribute(op: Operation, *, has_secret: bool) -> Transition:
    holding = tuple(
        p.sink for p in op.sinks if p.status in (SinkStatus.WRITING, SinkStatus.WRITTEN)
    )
    if not has_secret:
        return Transition(op, RecoverSecret(holding)) if holding else _roll_back(op, _LOST)
    for progress in op.sinks:
        if progress.status is SinkStatus.WRITING:
            return Transition(op, WriteSink(progress.sink))
        if progress.status is SinkStatus.PENDING:
            return Transition(op, CapturePrevious(progress.sink))
    return Transition(replace(op, step=Step.DISTRIBUTED), Proceed())


def _verify(op: Operation, *, has_secret: bool) -> Transition:
    if not has_secret:
        holding = op.sinks_serving_new()
        return Transition(op, RecoverSecret(holding)) if holding else _roll_back(op, _LOST)
    if not op.pat_verified:
        return Transition(op, VerifyPat())
    for progress in op.sinks:
        if progress.status is SinkStatus.WRITTEN:
            return Transition(op, ReadBack(progress.sink))
    return Transition(replace(op, step=Step.VERIFIED), Proceed())


def _tag(op: Operation, *, at: datetime) -> Transition:
    if op.previous is None or not op.untagged:
        return _finish(op, Outcome.ROTATED, None, step=Step.DONE)
    stamp = op.revoked_at or at
    return Transition(op, TagRevoked(op.untagged[0], op.previous.authorization_id, stamp))


def _rollback_next(op: Operation) -> Transition:
    for progress in op.sinks:
        if progress.status in (SinkStatus.WRITING, SinkStatus.WRITTEN, SinkStatus.CONFIRMED):
            return Transition(op, RestoreSink(progress.sink))
    if op.new is None or op.new_revoked:
        return _finish(op, Outcome.FAILED if op.new is None else Outcome.ROLLED_BACK, op.reason)
    stuck = [p.sink for p in op.sinks if p.status is SinkStatus.STUCK]
    if stuck:
        note = (
            f"the new PAT {op.new.authorization_id} stays valid because "
            f"{', '.join(stuck)} still serve(s) it"
        )
        return _finish(op.noted(note), Outcome.STRANDED, op.reason)
    return Transition(op, RevokePat(op.new.authorization_id))
