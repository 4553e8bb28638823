"""Rotate many tokens at once: a bounded pool of workers over the engine, one outcome per token.

:func:`run_fleet` hands each token to one of at most ``concurrency`` worker threads, started as
the work shows it waits (see :func:`run_fleet`). A worker is a
context manager that yields a function running one token (the runtime opens a state store
connection per worker, since SQLite connections belong to one thread). One token's failure, even
an unexpected exception, becomes that token's ``failed`` outcome and never stops the others.
:class:`SharedListingIssuer` lets every worker reuse one listing of the marked PATs per
organization, as a single sequential run would, instead of listing once per token.
"""

from __future__ import annotations

import enum
import math
import queue
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

from patwarden.domain.models import CreatedPat, IssuedPat, TokenSpec
from patwarden.errors import AuthError, PatwardenError, describe_error
from patwarden.rotation.listing import MarkedListing
from patwarden.rotation.outcomes import Finding, OutcomeKind, RunReport, TokenOutcome
from patwarden.rotation.ports import PatIssuer
from patwarden.secret import Secret

__all__ = [
    "EXIT_ALL_FAILED",
    "EXIT_OK",
    "EXIT_SOME_FAILED",
    "FleetProgress",
    "FleetReport",
    "FleetStatus",
    "SharedListingIssuer",
    "TokenRunner",
    "WorkerFactory",
    "run_fleet",
]

EXIT_OK = 0  # every token ended in its desired state (or was skipped: another run holds it)
EXIT_SOME_FAILED = 1  # at least one token needs attention (failed, rolled back, not converged)
EXIT_ALL_FAILED = 8  # every token that had work to do failed (distinct from config 2, auth 3, …)

TokenRunner = Callable[[TokenSpec], RunReport]
"""Runs the engine for one token and returns its report (one outcome)."""

WorkerFactory = Callable[[], AbstractContextManager[TokenRunner]]
"""Opens what one worker thread needs (a state connection, engines) and yields its runner."""


class FleetStatus(enum.StrEnum):
    """How a whole run went, as CI needs to know it."""

    OK = "ok"
    SOME_FAILED = "some_failed"
    ALL_FAILED = "all_failed"


@dataclass(frozen=True, kw_only=True)
class FleetProgress:
    """One token finished: how far the run is."""

    done: int
    total: int
    outcome: TokenOutcome


@dataclass(frozen=True, kw_only=True)
class FleetReport:
    """Every token's outcome and every reconcile finding of one run, in configuration order."""

    outcomes: tuple[TokenOutcome, ...]
    findings: tuple[Finding, ...] = ()
    concurrency: int = 1
    seconds: float = 0.0
    # Why every token failed when one cause explains it (the rotators' sign-in stopped working
    # mid-run: sessions revoked, password reset): the run exits with its code, not 8.
    cause: PatwardenError | None = None

    @property
    def failed(self) -> tuple[TokenOutcome, ...]:
        """The outcomes that need attention (failed, rolled back, or not in the desired state)."""
        return tuple(o for o in self.outcomes if o.needs_attention)

    @property
    def status(self) -> FleetStatus:
        """All succeeded (or nothing was due), some failed, or all failed."""
        if not self.failed:
            return FleetStatus.OK
        worked = [
            o for o in self.outcomes if o.kind is not OutcomeKind.NOT_DUE or o.needs_attention
        ]
        if len(self.failed) == len(worked):
            return FleetStatus.ALL_FAILED
        return FleetStatus.SOME_FAILED

    @property
    def exit_code(self) -> int:
        """0 all succeeded or nothing was due, 1 some failed, 8 all failed — or, when all failed
        for one :attr:`cause`, that error's code (3: the rotator cannot sign in)."""
        if self.cause is not None and self.status is FleetStatus.ALL_FAILED:
            return self.cause.exit_code
        return {
            FleetStatus.OK: EXIT_OK,
            FleetStatus.SOME_FAILED: EXIT_SOME_FAILED,
            FleetStatus.ALL_FAILED: EXIT_ALL_FAILED,
        }[self.status]

    def counts(self) -> dict[str, int]:
        """How many tokens ended in each outcome kind (kinds with none are left out)."""
        counts: dict[str, int] = {}
        for outcome in self.outcomes:
            counts[outcome.kind.value] = counts.get(outcome.kind.value, 0) + 1
        return counts

    def to_json(self) -> dict[str, object]:
        """The engine's ``RunReport`` document plus the run's status, counts and timing."""
        document = RunReport(outcomes=self.outcomes, findings=self.findings).to_json()
        document.update(
            status=self.status.value,
            exit_code=self.exit_code,
            summary=self.counts(),
            concurrency=self.concurrency,
            seconds=round(self.seconds, 3),
        )
        if self.cause is not None and self.status is FleetStatus.ALL_FAILED:
            cause = self.cause
            document["error"] = {
                "type": type(cause).__name__,
                "message": cause.message,
                "hint": cause.hint,
                "docs": cause.docs,
            }
        return document


GROW_EVERY = 0.05  # seconds between two looks at how busy the workers keep the process
BUSY = 0.95  # the share of one core the workers should keep busy; below it, start more


def run_fleet(
    *,
    specs: Sequence[TokenSpec],
    worker: WorkerFactory,
    concurrency: int,
    on_progress: Callable[[FleetProgress], None] | None = None,
    cpu_time: Callable[[], float] = time.process_time,
) -> FleetReport:
    """Run every token through up to ``concurrency`` workers and collect the outcomes.

    The pool starts with one worker and, every :data:`GROW_EVERY` seconds while tokens are
    waiting, starts as many more (up to ``concurrency``) as it takes to keep :data:`BUSY` of a
    core busy, judged from the process's CPU time (*cpu_time*) over that interval: workers that
    wait for Azure, a vault or a rate limit leave the CPU idle, and more of them overlap their
    waits; workers that only compute (nothing due, local sinks) share one interpreter lock, and
    more of them only add switching between them (1,000 tokens with nothing due and a file sink
    each: 0.98 s with one worker, 1.40 s with 64). ``FleetReport.concurrency`` is how many it
    started.

    ``on_progress`` is called (from worker threads, one call at a time) after each token. On
    KeyboardInterrupt no new token is started; tokens already running finish (their rotations
    are journaled either way) and the interrupt is raised again.
    """
    started = time.monotonic()
    pool = _Pool(specs=specs, worker=worker, on_progress=on_progress)
    limit = max(1, min(concurrency, len(specs)))
    threads: list[threading.Thread] = []

    def start(count: int) -> None:
        for _ in range(count):
            thread = threading.Thread(
                target=pool.work, name=f"patwarden-rotate-{len(threads)}", daemon=True
            )
            with pool.lock:
                pool.running += 1
            thread.start()
            threads.append(thread)

    start(1)
    try:
        wall, cpu = time.monotonic(), cpu_time()
        while True:
            if not pool.running:
                if not (pool.waiting() and len(threads) < limit):
                    break
                start(1)  # the workers stopped with tokens left (one could not start)
            if pool.exited.wait(GROW_EVERY):  # a worker ended: look again now, not a tick later
                pool.exited.clear()
            now, used = time.monotonic(), cpu_time()
            busy = (used - cpu) / max(now - wall, 1e-6)
            if busy < BUSY and len(threads) < limit and pool.waiting():
                wanted = math.ceil(len(threads) * BUSY / max(busy, 0.01))
                start(min(limit, max(wanted, len(threads) + 1)) - len(threads))
            wall, cpu = now, used
    except KeyboardInterrupt:
        pool.stop.set()
        for thread in threads:
            thread.join()
        raise
    for thread in threads:
        thread.join()  # each has left its worker (its state connection closed)
    reports = pool.results()
    return FleetReport(
        outcomes=tuple(outcome for report in reports for outcome in report.outcomes),
        findings=tuple(finding for report in reports for finding in report.findings),
        concurrency=len(threads),
        seconds=time.monotonic() - started,
    )


class _Pool:
    """The queue of tokens and the results the worker threads fill in."""

    def __init__(
        self,
        *,
        specs: Sequence[TokenSpec],
        worker: WorkerFactory,
        on_progress: Callable[[FleetProgress], None] | None,
    ) -> None:
        self.specs = list(specs)
        self.worker = worker
        self.on_progress = on_progress
        self.stop = threading.Event()
        self.exited = threading.Event()  # set by each worker as it ends
        self.running = 0  # workers started and not ended (changed under lock)
        self.todo: queue.SimpleQueue[int] = queue.SimpleQueue()
        for index in range(len(self.specs)):
            self.todo.put(index)
        self.reports: dict[int, RunReport] = {}
        self.worker_error: str | None = None
        self.lock = threading.Lock()

    def work(self) -> None:
        try:
            with self.worker() as run_one:
                while not self.stop.is_set():
                    try:
                        index = self.todo.get_nowait()
                    except queue.Empty:
                        return
                    self._finish(index, self._run(run_one, self.specs[index]))
        except Exception as exc:  # the worker could not start (or close): others carry on
            with self.lock:
                self.worker_error = describe_error(exc)
        finally:
            with self.lock:
                self.running -= 1
            self.exited.set()

    def waiting(self) -> bool:
        """Whether tokens wait for a worker."""
        return not self.todo.empty() and not self.stop.is_set()

    def _run(self, run_one: TokenRunner, spec: TokenSpec) -> RunReport:
        try:
            return run_one(spec)
        except Exception as exc:  # one token's failure never stops the others
            return RunReport(outcomes=(_failed(spec, describe_error(exc)),))

    def _finish(self, index: int, report: RunReport) -> None:
        with self.lock:
            self.reports[index] = report
            done = len(self.reports)
            if self.on_progress is not None:
                for outcome in report.outcomes:
                    self.on_progress(
                        FleetProgress(done=done, total=len(self.specs), outcome=outcome)
                    )

    def results(self) -> list[RunReport]:
        reason = (
            f"not run: {self.worker_error}" if self.worker_error else "not run: the run stopped"
        )
        return [
            self.reports.get(index) or RunReport(outcomes=(_failed(spec, reason),))
            for index, spec in enumerate(self.specs)
        ]


def _failed(spec: TokenSpec, reason: str) -> TokenOutcome:
    return TokenOutcome(token_name=spec.name, kind=OutcomeKind.FAILED, reason=reason)


class SharedListingIssuer:
    """A :class:`PatIssuer` that lists each organization's marked PATs once and shares the list.

    Every other call goes straight to *inner*. Use one per run: the list is what Azure DevOps
    said when the run started, exactly what a sequential engine run works from. A failed listing
    is not kept, so the next token tries again, unless the rotator could not sign in
    (:class:`~patwarden.errors.AuthError`): every later try of the run would fail alike, each
    costing Entra a refused refresh, so that failure is the answer for the rest of the run.
    """

    def __init__(self, inner: PatIssuer) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self._org_locks: dict[str, threading.Lock] = {}
        self._listed: dict[str, MarkedListing] = {}
        self._refused: dict[str, AuthError] = {}

    def list_marked(self, *, organization: str) -> Sequence[IssuedPat]:
        """Return the marked PATs of *organization* as first listed in this run (one
        :class:`~patwarden.rotation.listing.MarkedListing`, indexed by token, shared read-only).

        Raises:
            AzureDevOpsError: the listing failed.
        """
        with self._lock:
            org_lock = self._org_locks.setdefault(organization, threading.Lock())
        with org_lock:
            if organization in self._refused:
                raise self._refused[organization]
            if organization not in self._listed:
                try:
                    listed = self._inner.list_marked(organization=organization)
                except AuthError as exc:
                    self._refused[organization] = exc
                    raise
                self._listed[organization] = MarkedListing(listed)
            return self._listed[organization]  # indexed once; every worker only reads it

    def list_marked_fresh(self, *, organization: str) -> Sequence[IssuedPat]:
        """List the marked PATs of *organization* again now (the shared list is kept).

        Raises:
            AzureDevOpsError: the listing failed.
        """
        return list(self._inner.list_marked(organization=organization))

    def create(
        self, *, organization: str, display_name: str, scopes: Sequence[str], valid_to: datetime
    ) -> CreatedPat:
        """Create a PAT (see :meth:`PatIssuer.create`)."""
        return self._inner.create(
            organization=organization, display_name=display_name, scopes=scopes, valid_to=valid_to
        )

    def get(self, *, organization: str, authorization_id: str) -> IssuedPat | None:
        """Look a PAT up (see :meth:`PatIssuer.get`)."""
        return self._inner.get(organization=organization, authorization_id=authorization_id)

    def revoke(self, *, organization: str, authorization_id: str) -> None:
        """Revoke a PAT (see :meth:`PatIssuer.revoke`)."""
        self._inner.revoke(organization=organization, authorization_id=authorization_id)

    def verify(self, *, organization: str, secret: Secret, scopes: Sequence[str]) -> None:
        """Check a PAT works (see :meth:`PatIssuer.verify`)."""
        self._inner.verify(organization=organization, secret=secret, scopes=scopes)
