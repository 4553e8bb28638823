"""One check pass of ``patwarden serve``: the engine of ``rotate`` over every token, in batches.

Everything is the engine's, through :class:`~patwarden.app.runtime.Runtime` and its journal:
reconcile observes the world against each token's desired state (a current PAT revoked outside
patwarden, expired or gone, drift, stranded PATs, interrupted operations) and repairs what it
can; then it rotates what is due, revokes, audits and tags. What could not be repaired is on the
outcome (``TokenOutcome.problems``). Tokens run in batches of a few times the concurrency, so a
stop request takes no new batch while the in-flight one finishes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from patwarden.app.runtime import Runtime
from patwarden.domain.models import TokenSpec
from patwarden.errors import PatwardenError
from patwarden.rotation.outcomes import Finding, OutcomeKind, TokenOutcome

__all__ = ["PassResult", "run_pass"]


@dataclass(kw_only=True)
class PassResult:
    """What one pass did."""

    outcomes: list[TokenOutcome] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    error: PatwardenError | None = None  # the whole pass failed (e.g. no rotator can sign in)
    stopped: bool = False  # a stop request left tokens for the next start


def _batches(specs: Sequence[TokenSpec], size: int) -> Iterable[Sequence[TokenSpec]]:
    for start in range(0, len(specs), size):
        yield specs[start : start + size]


def run_pass(
    runtime: Runtime,
    specs: Sequence[TokenSpec],
    *,
    stop: threading.Event,
) -> PassResult:
    """Run the engine over *specs*, a batch at a time until *stop* is set."""
    result = PassResult()
    concurrency = runtime.config.rotation.concurrency
    pending = list(specs)
    for batch in _batches(pending, max(concurrency * 2, 4)):
        if stop.is_set():
            result.stopped = True
            break
        try:
            report = runtime.rotate(batch)
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
