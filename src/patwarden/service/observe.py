"""Build the :class:`~patwarden.service.snapshot.Snapshot` the endpoints render, from the state
store and what the last passes saw (no network)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from patwarden.app.runtime import Runtime
from patwarden.errors import PatwardenError
from patwarden.rotation.outcomes import TokenOutcome
from patwarden.rotation.ports import StateStore
from patwarden.service.snapshot import (
    AuditView,
    IdentityView,
    Snapshot,
    audit_views,
    token_view,
)

__all__ = ["observe"]


def observe(
    runtime: Runtime,
    *,
    base: Snapshot,
    identities: Sequence[IdentityView],
    outcomes: Mapping[str, TokenOutcome],
    now: datetime,
    with_audit: bool = True,
) -> Snapshot:
    """*base* (role, counters, pass times) with the tokens, identities and (*with_audit*) the
    recent audit events of now; without, *base*'s audit events are kept."""
    config = runtime.config
    specs = runtime.specs()
    try:
        plans = runtime.plan(specs)
        with runtime.open_store() as store:
            states = {state.token_name: state for state in store.tokens()}
            audit = _recent_audit(store, config.service.audit_events) if with_audit else base.audit
    except PatwardenError as err:
        return replace(base, at=now, state_error=err.message, identities=tuple(identities))
    orgs = {spec.name: spec.organization for spec in specs}
    tokens = tuple(
        token_view(
            plan=plan,
            organization=orgs[plan.token_name],
            state=states.get(plan.token_name),
            last=outcomes.get(plan.token_name),
            now=now,
            expiry_warning=config.notifications.expiry_warning,
        )
        for plan in plans
    )
    return replace(
        base,
        at=now,
        config_source=str(config.source) if config.source else None,
        state_error=None,
        tokens=tokens,
        identities=tuple(identities),
        audit=audit,
    )


def _recent_audit(store: StateStore, limit: int) -> tuple[AuditView, ...]:
    """The newest *limit* audit events (one bounded query, however long the log is)."""
    newest = list(store.audit(limit=max(limit, 1), newest_first=True))
    return audit_views(reversed(newest), limit=limit)
