"""One check pass of ``patwarden serve``: the desired-state check, then the engine in batches.

The desired-state check lists the marked PATs of each organization once (the same listing
reconcile reads) and forces a rotation of every token whose current PAT is no longer active —
revoked outside patwarden, deleted, or expired — so it is repaired within one check interval
instead of at its next scheduled rotation. Everything else (reconcile, resume, rotate when due,
revoke, audit, tag) is the engine of ``rotate``, through :class:`~patwarden.app.runtime.Runtime`
and its journal. Tokens run in batches of a few times the concurrency, so a stop request takes
no new batch while the in-flight one finishes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from patwarden.app.runtime import Runtime
from patwarden.domain.models import ManagedTokenState, TokenSpec
from patwarden.errors import PatwardenError
from patwarden.rotation.outcomes import Finding, OutcomeKind, TokenOutcome
from patwarden.service.logs import log_event

__all__ = ["PassResult", "desired_state_repairs", "run_pass"]


@dataclass(kw_only=True)
class PassResult:
    """What one pass did."""

    outcomes: list[TokenOutcome] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    repairs: dict[str, str] = field(default_factory=dict)  # token -> why it was forced
    error: PatwardenError | None = None  # the whole pass failed (e.g. no rotator can sign in)
    stopped: bool = False  # a stop request left tokens for the next start


def desired_state_repairs(
    runtime: Runtime,
    specs: Sequence[TokenSpec],
    states: Mapping[str, ManagedTokenState],
    *,
    now: datetime,
) -> dict[str, str]:
    """Tokens whose current PAT is not active any more, with the reason (listing failures are
    logged and leave their tokens to the engine)."""
    groups: dict[tuple[str, str], list[TokenSpec]] = {}
    for spec in specs:
        state = states.get(spec.name)
        if state is not None and state.current is not None:
            groups.setdefault((runtime.rotator_for(spec.name), spec.organization), []).append(spec)
    repairs: dict[str, str] = {}
    for (rotator, organization), group in groups.items():
        try:
            active = {
                pat.authorization_id
                for pat in runtime.issuer(rotator).list_marked(organization=organization)
            }
        except PatwardenError as err:
            log_event("desired_state", f"cannot list the PATs of {organization}: {err.message}")
            continue
        for spec in group:
            current = states[spec.name].current
            assert current is not None  # grouped above only with a current PAT
            if current.valid_to <= now:
                repairs[spec.name] = f"its current PAT {current.authorization_id} has expired"
            elif current.authorization_id not in active:
                repairs[spec.name] = (
                    f"its current PAT {current.authorization_id} is no longer active in "
                    f"{organization} (revoked or deleted outside patwarden)"
                )
    return repairs


def _batches(specs: Sequence[TokenSpec], size: int) -> Iterable[Sequence[TokenSpec]]:
    for start in range(0, len(specs), size):
        yield specs[start : start + size]


def run_pass(
    runtime: Runtime,
    specs: Sequence[TokenSpec],
    *,
    repairs: Mapping[str, str],
    stop: threading.Event,
) -> PassResult:
    """Run the engine over *specs* (forcing *repairs*), a batch at a time until *stop* is set."""
    result = PassResult(repairs=dict(repairs))
    concurrency = runtime.config.rotation.concurrency
    for reason in repairs.items():
        log_event("repair", f"rotating {reason[0]} now: {reason[1]}", token=reason[0])
    pending = list(specs)
    for batch in _batches(pending, max(concurrency * 2, 4)):
        if stop.is_set():
            result.stopped = True
            break
        try:
            report = runtime.rotate(batch, force={s.name for s in batch if s.name in repairs})
        except PatwardenError as err:  # every batch would fail alike: fail the rest, stop here
            result.error = err
            done = {o.token_name for o in result.outcomes}
            result.outcomes += [
                TokenOutcome(token_name=s.name, kind=OutcomeKind.FAILED, reason=err.message)
                for s in pending
                if s.name not in done
            ]
            break
        result.outcomes += report.outcomes
        result.findings += report.findings
    return result
