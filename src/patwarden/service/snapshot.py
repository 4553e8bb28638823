"""What the service knows at one moment: every token, every identity, the recent audit events.

The scheduler rebuilds a :class:`Snapshot` after every pass from the state store and what the pass
saw; ``/metrics``, ``/readyz`` and the status page render the latest one, so a scrape never calls
Azure and always matches the state store. Nothing here holds a secret: PATs appear by
authorization id only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from patwarden.domain.models import AuditRecord, ManagedTokenState
from patwarden.rotation.outcomes import TokenOutcome, TokenPlan

# A token still due this long after its due time has not been rotated "in time" (a due token is
# normally rotated within a second; this keeps the moment between due and done from alerting).
OVERDUE_GRACE = timedelta(minutes=15)

__all__ = [
    "AuditView",
    "IdentityView",
    "Snapshot",
    "TokenView",
    "audit_views",
    "token_view",
]


@dataclass(frozen=True, kw_only=True)
class TokenView:
    """One managed token as the status page and the metrics show it."""

    name: str
    organization: str
    status: str  # ok | due | failed | stranded | drift | expiring | no_pat
    current_authorization_id: str | None = None
    valid_to: datetime | None = None
    next_rotation: datetime | None = None
    last_outcome: str | None = None
    last_reason: str | None = None
    issued_at: datetime | None = None  # when the current PAT was issued
    drift: tuple[str, ...] = ()  # why the token is off its desired state after its last run
    expiring: bool = False  # expires within expiry_warning and no rotation replaced it in time
    problem: str | None = None
    fix: str | None = None


@dataclass(frozen=True, kw_only=True)
class IdentityView:
    """One identity's sign-in as the last check found it."""

    name: str
    kind: str
    roles: tuple[str, ...] = ()
    ok: bool = True
    relogin_now: bool = False  # Entra wants an interactive sign-in (or nobody logged in)
    detail: str = ""
    fix: str | None = None
    relogin_deadline: datetime | None = None
    relogin_cause: str | None = None
    checked_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class AuditView:
    """One audit record, flattened for display."""

    at: datetime
    kind: str
    token: str | None
    operation_id: str | None
    authorization_id: str | None
    detail: str


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    """Everything the endpoints render."""

    at: datetime
    role: str = "starting"  # starting | leader | standby | stopping
    leader: str | None = None  # who leads, when standing by
    config_source: str | None = None
    config_error: str | None = None  # the last SIGHUP's invalid config, when the old one is kept
    state_error: str | None = None
    tokens: tuple[TokenView, ...] = ()
    identities: tuple[IdentityView, ...] = ()
    audit: tuple[AuditView, ...] = ()
    last_pass_at: datetime | None = None
    next_pass_at: datetime | None = None
    counters: Mapping[str, Mapping[tuple[str, ...], float]] = field(default_factory=dict)

    @property
    def problems(self) -> list[str]:
        """Why the service is not ready (empty: ready)."""
        found = []
        if self.state_error:
            found.append(f"state: {self.state_error}")
        found += [
            f"identity {i.name}: {i.detail}" + (f" — {i.fix}" if i.fix else "")
            for i in self.identities
            if not i.ok
        ]
        if self.role == "starting" or (not self.identities and self.role != "stopping"):
            found.append("starting: the first sign-in check has not finished yet")
        return found


def token_view(
    *,
    plan: TokenPlan,
    organization: str,
    state: ManagedTokenState | None,
    last: TokenOutcome | None,
    now: datetime,
    expiry_warning: timedelta,
) -> TokenView:
    """The view of one token from its plan, state and last outcome."""
    current = state.current if state else None
    # What the last run could not bring to the desired state (the engine's own check).
    lines = tuple(last.problems) if last is not None else ()
    due_at = plan.decision.due_at
    unrotated = (
        plan.problem is not None
        or (last is not None and not last.kind.is_ok)
        or (plan.decision.is_due and due_at is not None and now - due_at > OVERDUE_GRACE)
    )
    expiring = current is not None and unrotated and current.valid_to - now <= expiry_warning
    status, problem, fix = "ok", None, None
    if plan.problem:
        status, problem, fix = "failed", plan.problem, "fix the token's schedule in the config"
    elif last is not None and not last.kind.is_ok:
        status, problem = "failed", f"last rotation {last.kind.value}: {last.reason}"
        fix = "see the audit events below and `patwarden status`; the old PAT stays current"
    elif current is None:
        status, problem, fix = "no_pat", "no PAT issued yet", "the next check rotates it"
    elif stranded := sorted(state.served_ids() - {current.authorization_id} if state else ()):
        status = "stranded"
        problem = f"sinks are recorded as holding PAT {', '.join(stranded)}, not the current one"
        fix = "the next check rotates again so every sink serves one PAT"
    elif lines:
        status, problem = "drift", "; ".join(lines)
        fix = "the last run could not repair it: check the sink and its writer's access"
    elif expiring:
        status, problem = "expiring", f"the current PAT expires {current.valid_to.isoformat()}"
        fix = "check the last rotation's error; `patwarden rotate --token NAME` rotates it now"
    elif plan.decision.is_due:
        status = "due"
    return TokenView(
        name=plan.token_name,
        organization=organization,
        status=status,
        current_authorization_id=current.authorization_id if current else None,
        valid_to=current.valid_to if current else None,
        next_rotation=plan.decision.due_at,
        last_outcome=last.kind.value if last else None,
        last_reason=last.reason if last else None,
        issued_at=current.valid_from if current else None,
        drift=lines,
        expiring=expiring,
        problem=problem,
        fix=fix,
    )


def audit_views(records: Iterable[AuditRecord], *, limit: int) -> tuple[AuditView, ...]:
    """The last *limit* audit records of *records* (oldest first), newest first."""
    recent: deque[AuditRecord] = deque(maxlen=max(limit, 1))
    for record in records:
        recent.append(record)
    views = [
        AuditView(
            at=r.at,
            kind=r.kind,
            token=r.token_name,
            operation_id=r.operation_id,
            authorization_id=r.authorization_id,
            detail=", ".join(f"{k}={v}" for k, v in r.detail),
        )
        for r in reversed(recent)
    ]
    return tuple(views[:limit])
