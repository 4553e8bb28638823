"""What ``plan`` and ``status`` say about each token: due or not and why, from the state alone.

It reads the state store and nothing else (no issuer, no sink, no network), and it is light to
import: ``status`` and ``plan`` load neither the engine nor its state machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from patwarden.domain.models import TokenSpec
from patwarden.rotation import records
from patwarden.rotation.outcomes import TokenPlan
from patwarden.rotation.ports import StateStore

__all__ = ["plan"]


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
