"""What ``plan`` and ``status`` say about each token: due or not and why, from the state alone.

It reads the state store and nothing else (no issuer, no sink, no network), and it is light to
import: ``status`` and ``plan`` load neither the engine nor its state machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from patwarden.domain.models import AuditRecord, TokenSpec
from patwarden.rotation import records
from patwarden.rotation.outcomes import TokenPlan
from patwarden.rotation.ports import StateStore

__all__ = ["last_sign_in", "plan"]


def plan(store: StateStore, specs: Sequence[TokenSpec], *, now: datetime) -> list[TokenPlan]:
    """Say, for each of *specs*, whether it is due at *now* and why; changes nothing."""
    return [
        records.token_plan(
            spec=spec,
            state=store.load_token(spec.name),
            operations=store.operations(spec.name, unfinished=True),
            now=now,
            finished=store.operations(spec.name),
        )
        for spec in specs
    ]


def last_sign_in(store: StateStore, identity: str, now: datetime) -> AuditRecord | None:
    """The last recorded sign-in failure of *identity* (in the last 90 days) if no sign-in
    worked since, else None. Reads only the sign-in records, newest first (an indexed query:
    its cost does not grow with the rotations audited)."""
    recent = store.audit(
        since=now - timedelta(days=90), kinds=("sign_in_failed", "sign_in_ok"), newest_first=True
    )
    for record in recent:
        if dict(record.detail).get("identity") == identity:
            return record if record.kind == "sign_in_failed" else None
    return None
