"""What the rotation engine reports: a typed outcome per token and the findings of reconcile.

The CLI prints these; nothing here holds a secret. ``RunReport.ok`` is False when any token failed,
was rolled back or did not reach its desired state (``TokenOutcome.problems``), so ``rotate`` can
exit non-zero.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from patwarden.domain.models import ManagedTokenState
from patwarden.domain.schedule import ScheduleDecision
from patwarden.secret import Secret

__all__ = [
    "AdoptResult",
    "Finding",
    "FindingKind",
    "OutcomeKind",
    "Promotion",
    "RunReport",
    "SinkReport",
    "TokenOutcome",
    "TokenPlan",
]


class OutcomeKind(enum.StrEnum):
    """How one token fared in a run."""

    ROTATED = "rotated"  # a new PAT is current in every sink
    NOT_DUE = "not_due"  # nothing to do yet
    WOULD_ROTATE = "would_rotate"  # dry run: due, nothing changed
    FAILED = "failed"  # could not rotate (or refused to); the old PAT stays current
    ROLLED_BACK = "rolled_back"  # a rotation failed midway and was undone; old PAT current
    SKIPPED = "skipped"  # another run holds the token's lock

    @property
    def is_ok(self) -> bool:
        """Return whether this outcome needs no attention."""
        return self not in (OutcomeKind.FAILED, OutcomeKind.ROLLED_BACK)


@dataclass(frozen=True, kw_only=True)
class SinkReport:
    """Which PAT one sink serves after the run (``None``: unknown or empty)."""

    sink: str
    authorization_id: str | None
    status: str


@dataclass(frozen=True, kw_only=True)
class TokenOutcome:
    """The result of one token in one run."""

    token_name: str
    kind: OutcomeKind
    reason: str
    operation_id: str | None = None
    current_authorization_id: str | None = None
    new_authorization_id: str | None = None
    due_at: datetime | None = None
    sinks: tuple[SinkReport, ...] = ()
    notes: tuple[str, ...] = ()
    # Why the token is not in its desired state at the end of the run (empty: converged).
    problems: tuple[str, ...] = ()
    replaced_authorization_id: str | None = None  # the PAT a rotation replaced

    @property
    def converged(self) -> bool:
        """Whether the token ended in its desired state (one valid PAT every sink serves)."""
        return not self.problems

    @property
    def needs_attention(self) -> bool:
        """Whether the outcome failed, was rolled back, or left the token off its desired state."""
        return not self.kind.is_ok or not self.converged

    def to_json(self) -> dict[str, object]:
        """Return a JSON-serialisable dict for ``--output json``."""
        return {
            "token": self.token_name,
            "outcome": self.kind.value,
            "reason": self.reason,
            "operation_id": self.operation_id,
            "current_authorization_id": self.current_authorization_id,
            "new_authorization_id": self.new_authorization_id,
            "replaced_authorization_id": self.replaced_authorization_id,
            "converged": self.converged,
            "problems": list(self.problems),
            "due_at": None if self.due_at is None else self.due_at.isoformat(),
            "sinks": [
                {"sink": s.sink, "authorization_id": s.authorization_id, "status": s.status}
                for s in self.sinks
            ],
            "notes": list(self.notes),
        }


class FindingKind(enum.StrEnum):
    """What reconcile found or did."""

    RESUMED = "resumed"  # an interrupted operation was continued or rolled back
    REVOKED_PREVIOUS = "revoked_previous"  # a previous PAT's grace period ended; revoked
    REVOKE_DEFERRED = "revoke_deferred"  # a due revocation could not happen (yet)
    ORPHAN_REVOKED = "orphan_revoked"  # a marked PAT nothing referenced was revoked
    ORPHAN_FOUND = "orphan_found"  # dry run, or the revoke failed
    DRIFT = "drift"  # a sink no longer serves what patwarden wrote
    STATE_MISSING = "state_missing"  # marked PATs exist but the state knows nothing of them
    STRANDED_REVOKED = "stranded_revoked"  # a PAT the journal knows, served by no sink: revoked
    CURRENT_LOST = "current_lost"  # the current PAT was revoked, expired or is gone: rotate now
    PREFLIGHT_FAILED = "preflight_failed"  # a sink's target is missing or not writable


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One reconcile finding, for the report and the audit log."""

    kind: FindingKind
    token_name: str
    detail: str
    authorization_id: str | None = None
    sink: str | None = None

    def to_json(self) -> dict[str, object]:
        """Return a JSON-serialisable dict."""
        return {
            "kind": self.kind.value,
            "token": self.token_name,
            "detail": self.detail,
            "authorization_id": self.authorization_id,
            "sink": self.sink,
        }


@dataclass(frozen=True, kw_only=True)
class RunReport:
    """Everything one ``rotate`` run did: per-token outcomes and reconcile findings."""

    outcomes: tuple[TokenOutcome, ...]
    findings: tuple[Finding, ...] = ()

    @property
    def ok(self) -> bool:
        """Return whether every token ended in its desired state, needing no attention."""
        return not any(o.needs_attention for o in self.outcomes)

    def to_json(self) -> dict[str, object]:
        """Return a JSON-serialisable dict."""
        return {
            "ok": self.ok,
            "tokens": [o.to_json() for o in self.outcomes],
            "findings": [f.to_json() for f in self.findings],
        }


@dataclass(frozen=True, kw_only=True)
class TokenPlan:
    """What ``plan`` says about one token, without changing anything."""

    token_name: str
    decision: ScheduleDecision
    state: ManagedTokenState | None
    unfinished_operations: tuple[str, ...] = ()
    problem: str | None = None
    # Every previous PAT still valid and awaiting revocation, newest first, with when its
    # grace period ends (rotating inside a grace period leaves several).
    previous: tuple[str, ...] = ()
    previous_until: tuple[datetime | None, ...] = ()
    stranded: tuple[str, ...] = ()  # PATs a failed rotation left valid; the next run revokes them


@dataclass(frozen=True, kw_only=True)
class Promotion:
    """What hooks are told when a new PAT becomes current (never its value)."""

    token_name: str
    organization: str
    operation_id: str
    authorization_id: str
    valid_to: datetime
    previous_authorization_id: str | None
    revoke_at: datetime | None
    sinks: tuple[str, ...]
    # The new PAT when the engine holds it, only to scrub it from hook output (never shown,
    # stored or handed to a hook; patwarden.hooks.redaction).
    secrets: tuple[Secret, ...] = field(default=(), repr=False, compare=False)


@dataclass(frozen=True, kw_only=True)
class AdoptResult:
    """What ``adopt`` rebuilt for one token."""

    token_name: str
    adopted: bool
    current_authorization_id: str | None
    detail: str
    notes: tuple[str, ...] = ()
