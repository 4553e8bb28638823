"""Pure helpers of the engine: the token state, audit records and outcomes an operation implies.

No I/O: the engine loads and saves; these functions only compute. Nothing here holds a secret.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from patwarden.domain.models import AuditRecord, IssuedPat, ManagedTokenState, SinkRecord
from patwarden.domain.operation import Operation, Outcome, SinkProgress, SinkStatus, Step
from patwarden.rotation.outcomes import OutcomeKind, SinkReport, TokenOutcome

__all__ = [
    "is_active",
    "operation_audit",
    "outcome_of",
    "pat_id",
    "promoted_state",
    "state_after",
    "state_audit",
]


def pat_id(pat: IssuedPat | None) -> str | None:
    """Return the authorization id of ``pat``, if any."""
    return None if pat is None else pat.authorization_id


def is_active(op: Operation) -> bool:
    """Return whether ``op`` is mid-rotation (not finished, not merely waiting to revoke)."""
    return not op.step.is_terminal and op.step is not Step.REVOKE_PENDING


def promoted_state(
    *, state: ManagedTokenState, op: Operation, revoke_after: timedelta, now: datetime
) -> ManagedTokenState | None:
    """Return ``state`` with the operation's new PAT current, or ``None`` if it already is."""
    new = op.new
    if new is None:
        raise AssertionError(f"operation {op.operation_id} promotes without a new PAT")
    if pat_id(state.current) == new.authorization_id:
        return None  # promoted before an interruption
    previous = state.current or op.previous
    promoted = replace(
        state,
        current=new,
        previous=previous,
        revoke_at=None if previous is None else now + revoke_after,
        last_operation_id=op.operation_id,
        updated_at=now,
    )
    for progress in op.sinks:
        if progress.written is not None:
            record = SinkRecord(
                sink=progress.sink, authorization_id=new.authorization_id, ref=progress.written.ref
            )
            promoted = promoted.with_sink(record)
    return promoted


def state_after(
    op: Operation, state: ManagedTokenState | None, now: datetime
) -> ManagedTokenState | None:
    """Return the token state a finished ``op`` implies, or ``None`` if it changes nothing.

    A revoked previous PAT leaves the state; sinks a rollback could not restore are recorded as
    serving the new PAT (so it is never taken for an orphan while they do).
    """
    if state is None or not op.step.is_terminal:
        return None
    if op.step is Step.DONE and op.previous is not None:
        if pat_id(state.previous) == op.previous.authorization_id:
            return replace(state, previous=None, revoke_at=None, updated_at=now)
        return None
    if op.outcome is Outcome.STRANDED and op.new is not None:
        for progress in op.sinks:
            if progress.status is SinkStatus.STUCK:
                ref = None if progress.written is None else progress.written.ref
                state = state.with_sink(
                    SinkRecord(
                        sink=progress.sink, authorization_id=op.new.authorization_id, ref=ref
                    )
                )
        return replace(state, updated_at=now)
    return None


def state_audit(kind: str, state: ManagedTokenState, detail: str, now: datetime) -> AuditRecord:
    """Return an audit record about a token's state."""
    return AuditRecord(
        at=now,
        kind=kind,
        token_name=state.token_name,
        operation_id=state.last_operation_id,
        authorization_id=pat_id(state.current),
        detail=(("detail", detail),),
    )


def operation_audit(op: Operation, now: datetime) -> list[AuditRecord]:
    """Return the audit record for an operation that finished or was promoted, else nothing."""
    if not (op.step.is_terminal or op.step is Step.REVOKE_PENDING):
        return []
    detail: list[tuple[str, str | int | bool | None]] = [("step", op.step.value)]
    if op.outcome is not None:
        detail.append(("outcome", op.outcome.value))
    if op.reason:
        detail.append(("reason", op.reason))
    for progress in op.sinks:
        detail.append((f"sink:{progress.sink}", progress.status.value))
    return [
        AuditRecord(
            at=now,
            kind=f"operation_{op.step.value}",
            token_name=op.token_name,
            operation_id=op.operation_id,
            authorization_id=pat_id(op.new),
            detail=tuple(detail),
        )
    ]


def outcome_of(
    op: Operation, state: ManagedTokenState | None, *, reason: str, notes: list[str]
) -> TokenOutcome:
    """Return the typed outcome of a rotation operation, with which sink holds which PAT."""
    rotated = op.step in (Step.DONE, Step.REVOKE_PENDING)
    if rotated:
        kind = OutcomeKind.ROTATED
    elif op.outcome in (Outcome.ROLLED_BACK, Outcome.STRANDED):
        kind = OutcomeKind.ROLLED_BACK
    else:
        kind = OutcomeKind.FAILED
    if op.note:
        notes = [*notes, op.note]
    return TokenOutcome(
        token_name=op.token_name,
        kind=kind,
        reason=reason if rotated else (op.reason or reason),
        operation_id=op.operation_id,
        current_authorization_id=pat_id(state.current if state else None),
        new_authorization_id=pat_id(op.new),
        sinks=tuple(_sink_report(op, p, state) for p in op.sinks),
        notes=tuple(notes),
    )


def _sink_report(
    op: Operation, progress: SinkProgress, state: ManagedTokenState | None
) -> SinkReport:
    new_id = pat_id(op.new)
    previous = progress.previous
    if progress.status is SinkStatus.PENDING and state is not None:
        previous = state.sink(progress.sink)  # never captured: what patwarden last recorded
    previous_id = None if previous is None else previous.authorization_id
    holds = {
        SinkStatus.PENDING: (previous_id, "untouched"),
        SinkStatus.WRITING: (None, "write interrupted (either version)"),
        SinkStatus.WRITTEN: (new_id, "holds the new PAT"),
        SinkStatus.CONFIRMED: (new_id, "holds the new PAT (confirmed)"),
        SinkStatus.RESTORED: (previous_id, "restored to its previous version"),
        SinkStatus.STUCK: (new_id, "still holds the new PAT (restore failed)"),
    }
    holder, status = holds[progress.status]
    return SinkReport(sink=progress.sink, authorization_id=holder, status=status)
