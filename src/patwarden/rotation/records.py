"""Pure helpers of the engine: the token state, audit records and outcomes an operation implies.

No I/O: the engine loads and saves; these functions only compute. Nothing here holds a secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from patwarden.domain.marker import format_marker
from patwarden.domain.models import (
    AuditRecord,
    IssuedPat,
    ManagedTokenState,
    SinkRecord,
    TokenSpec,
)
from patwarden.domain.operation import Operation, Outcome, SinkProgress, SinkStatus, Step
from patwarden.domain.schedule import ScheduleError, check_spec, decide
from patwarden.rotation.outcomes import OutcomeKind, SinkReport, TokenOutcome, TokenPlan

__all__ = [
    "clamp_note",
    "is_active",
    "new_operation",
    "operation_audit",
    "outcome_of",
    "pat_id",
    "previous_pats",
    "promoted_state",
    "state_after",
    "state_audit",
    "stranded_pats",
    "stranded_reason",
    "token_plan",
]


def pat_id(pat: IssuedPat | None) -> str | None:
    """Return the authorization id of ``pat``, if any."""
    return None if pat is None else pat.authorization_id


def is_active(op: Operation) -> bool:
    """Return whether ``op`` is mid-rotation (not finished, not merely in its revocation tail)."""
    return not op.step.is_terminal and not op.step.is_tail


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
    """Return the token state ``op`` implies once revoked or finished, or ``None`` if unchanged.

    A revoked previous PAT leaves the state; sinks a rollback could not restore are recorded as
    serving the new PAT (so it is never taken for an orphan while they do).
    """
    if state is None or not (op.step.is_terminal or op.step is Step.REVOKED):
        return None
    if op.step in (Step.REVOKED, Step.DONE) and op.previous is not None:
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


def operation_audit(
    op: Operation, now: datetime, *, came_from: Step | None = None
) -> list[AuditRecord]:
    """Return the audit record for an operation that finished or was promoted, else nothing.

    An operation entering ``revoked`` gets its ``revoked_previous`` record instead, written in
    the same transaction as the step: a revocation is audited exactly once, whatever crashes.
    With no sink to tag, the revocation goes from ``revoke_pending`` straight to ``done``
    (``came_from``): that step carries both records.
    """
    straight = op.step is Step.DONE and came_from is Step.REVOKE_PENDING and op.revoked_at
    if (op.step is Step.REVOKED or straight) and op.previous is not None:
        revoked = [
            AuditRecord(
                at=now,
                kind="revoked_previous",
                token_name=op.token_name,
                operation_id=op.operation_id,
                authorization_id=op.previous.authorization_id,
                detail=(("detail", "grace period over"), ("organization", op.organization)),
            )
        ]
        if op.step is Step.REVOKED:
            return revoked
        return revoked + operation_audit(op, now)
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
    rotated = op.step is Step.DONE or op.step.is_tail
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
        replaced_authorization_id=pat_id(op.previous) if rotated else None,
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


def token_plan(
    *,
    spec: TokenSpec,
    state: ManagedTokenState | None,
    operations: Sequence[Operation],
    now: datetime,
    finished: Sequence[Operation] | None = None,
) -> TokenPlan:
    """Say whether ``spec`` is due and why, and which of its operations are mid-rotation."""
    problem = None
    try:
        check_spec(spec)
    except ScheduleError as exc:
        problem = exc.message
    decision = decide(spec=spec, issued=state.current if state else None, now=now)
    if state is not None and state.current is None and state.last_operation_id is not None:
        decision = replace(
            decision, reason="no current PAT (it was revoked or lost): due now, a new one is issued"
        )
    pending = previous_pats(state, operations)
    return TokenPlan(
        token_name=spec.name,
        decision=decision,
        state=state,
        unfinished_operations=tuple(op.operation_id for op in operations if is_active(op)),
        problem=problem or decision.problem,
        previous=tuple(pending),
        previous_until=tuple(pending.values()),
        stranded=tuple(stranded_pats(state, finished)) if finished is not None else (),
    )


def previous_pats(
    state: ManagedTokenState | None, operations: Sequence[Operation]
) -> dict[str, datetime | None]:
    """Every previous PAT still awaiting revocation (newest first) and when its grace ends."""
    found: dict[str, datetime | None] = {}
    if state is not None and state.previous is not None:
        found[state.previous.authorization_id] = state.revoke_at
    for op in reversed(operations):
        if op.step is Step.REVOKE_PENDING and op.previous is not None:
            found.setdefault(op.previous.authorization_id, op.revoke_at)
    return found


def stranded_pats(state: ManagedTokenState | None, operations: Sequence[Operation]) -> list[str]:
    """PATs finished rotations created and left valid (a failed rollback, a lost answer) that
    the state no longer refers to: the next ``rotate`` revokes them once no sink serves them."""
    referenced = set() if state is None else set(state.referenced_ids())
    found = []
    for op in operations:
        new = op.new
        left = op.step is Step.FAILED and new is not None and not op.new_revoked
        if left and new is not None and new.authorization_id not in referenced:
            found.append(new.authorization_id)
    return found


def stranded_reason(state: ManagedTokenState | None) -> str | None:
    """Why a token must rotate although it is not due: a failed rotation left a sink recorded
    as holding a PAT that is not the current one (its restore failed, or its answer was lost).

    Rotating again moves every sink onto one new PAT; reconcile then revokes the stranded PAT
    (no sink refers to it any more) instead of keeping it valid until the next scheduled rotation.
    """
    if state is None or state.current is None:
        return None
    current = state.current.authorization_id
    others = sorted({pat for pat in state.served_ids() if pat != current})
    if not others:
        return None
    return (
        f"a failed rotation left sinks recorded as holding PAT {', '.join(others)} instead of "
        f"the current {current}: rotating again so every sink serves one PAT"
    )


_CLAMP_NOTE_TOLERANCE = timedelta(minutes=5)


def new_operation(
    *,
    spec: TokenSpec,
    state: ManagedTokenState | None,
    sinks: Sequence[str],
    operation_id: str,
    now: datetime,
) -> Operation:
    """Return the planned operation of a new rotation of ``spec`` to ``sinks``."""
    return Operation(
        operation_id=operation_id,
        token_name=spec.name,
        organization=spec.organization,
        display_name=format_marker(token_name=spec.name, operation_id=operation_id),
        scopes=spec.scopes,
        requested_valid_to=now + spec.lifetime,
        revoke_after=spec.revoke_after,
        started_at=now,
        previous=state.current if state else None,
        sinks=tuple(SinkProgress(sink=key) for key in sinks),
    )


def clamp_note(spec: TokenSpec, op: Operation) -> list[str]:
    """Return a note when Azure DevOps issued a shorter lifetime than configured (a policy)."""
    if op.new is None or spec.lifetime - op.new.lifetime <= _CLAMP_NOTE_TOLERANCE:
        return []
    return [
        f"Azure DevOps issued a {op.new.lifetime} lifetime instead of {spec.lifetime} "
        "(a lifespan policy clamped it); the schedule follows the issued validTo"
    ]
