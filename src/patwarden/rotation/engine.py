"""The rotation engine: runs the protocol of design §2 through the ports, resumably, and drives
every token to its desired state (:mod:`patwarden.rotation.converge`).

For every configured token, under that token's cross-process lock: reconcile (resume interrupted
operations, revoke previous PATs whose grace period ended, revoke orphans and stranded PATs, find
drift and a lost current PAT), then plan (due by the *issued* validTo, or a repair needed?),
preflight the sinks and rotate: create → distribute → verify → promote → revoke the previous PAT
once ``revoke_after`` has passed → tag its sink versions; last, compare the end state with the
desired state. Each step is journaled before its action runs (:mod:`patwarden.domain.rotation`),
so a crash at any point resumes on the next run. Audits, tags and hook notes happen here, under
the token's lock (:mod:`patwarden.rotation.tail`). The result is a typed
:class:`~patwarden.rotation.outcomes.TokenOutcome` per token, with its problems, if any.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from functools import partial

from patwarden.domain.messages import Event, Resume, Wait
from patwarden.domain.models import IssuedPat, ManagedTokenState, TokenSpec
from patwarden.domain.operation import Operation, Step
from patwarden.domain.rotation import transition
from patwarden.domain.schedule import check_spec, decide
from patwarden.errors import ConfigError, PatwardenError
from patwarden.rotation import converge, planning, records, tail
from patwarden.rotation.actions import ActionRunner, StopOperation
from patwarden.rotation.converge import TokenRun
from patwarden.rotation.outcomes import (
    AdoptResult,
    Finding,
    FindingKind,
    OutcomeKind,
    RunReport,
    TokenOutcome,
    TokenPlan,
)
from patwarden.rotation.ports import Clock, PatIssuer, Sink, StateLocked, StateStore
from patwarden.rotation.reconcile import (
    adopt_into,
    find_drift,
    marked_for,
    not_adopted,
    preview_token,
    sweep,
)
from patwarden.rotation.tail import PromotionHook

__all__ = ["PromotionHook", "RotationEngine", "SinkResolver"]

SinkResolver = Callable[[TokenSpec], Sequence[Sink]]
"""Builds the live sinks of a token (the lead wires config sink specs to sink objects)."""

ORPHAN_MARGIN_DEFAULT = 3600.0
_ALREADY_MANAGED = "already managed; pass --replace to rebuild it anyway"


def _new_operation_id() -> str:
    return uuid.uuid4().hex


class RotationEngine:
    """Rotates managed tokens through a :class:`PatIssuer`, sinks and a :class:`StateStore`."""

    def __init__(
        self,
        *,
        issuer: PatIssuer,
        store: StateStore,
        clock: Clock,
        sinks: SinkResolver,
        on_promoted: PromotionHook | None = None,
        lock_timeout: float = 300.0,
        orphan_margin_seconds: float = ORPHAN_MARGIN_DEFAULT,
        new_operation_id: Callable[[], str] = _new_operation_id,
    ) -> None:
        self._issuer = issuer
        self._store = store
        self._clock = clock
        self._resolve_sinks = sinks
        self._on_promoted = on_promoted
        self._lock_timeout = lock_timeout
        self._orphan_margin = timedelta(seconds=orphan_margin_seconds)
        self._new_operation_id = new_operation_id

    # --- public API ----------------------------------------------------------------------------

    def plan(self, specs: Sequence[TokenSpec]) -> list[TokenPlan]:
        """Say, for each token, whether it is due and why; changes nothing."""
        return planning.plan(self._store, specs, now=self._clock.now())

    def run(
        self, specs: Sequence[TokenSpec], *, dry_run: bool = False, force: Collection[str] = ()
    ) -> RunReport:
        """Reconcile, then rotate every due token (and every token named in ``force``).

        ``dry_run`` plans and reconciles read-only: nothing is created, written or revoked.
        """
        marked = self._list_marked({spec.organization for spec in specs})
        outcomes: list[TokenOutcome] = []
        findings: list[Finding] = []
        for spec in specs:
            listing = marked.get(spec.organization)
            if dry_run:
                outcomes.append(self._dry_run(spec, listing, findings))
                continue
            try:
                with self._store.token_lock(spec.name, timeout=self._lock_timeout):
                    outcome = self._run_token(spec, listing, findings, force=spec.name in force)
            except StateLocked as exc:
                outcome = TokenOutcome(
                    token_name=spec.name, kind=OutcomeKind.SKIPPED, reason=exc.message
                )
            outcomes.append(outcome)
        return RunReport(outcomes=tuple(outcomes), findings=tuple(findings))

    def adopt(
        self, specs: Sequence[TokenSpec], *, replace_existing: bool = False
    ) -> list[AdoptResult]:
        """Rebuild the state of each token from display-name markers and sink metadata.

        Tokens the state already knows are left alone unless ``replace_existing``.
        """
        marked = self._list_marked({spec.organization for spec in specs})
        results = []
        for spec in specs:
            with self._store.token_lock(spec.name, timeout=self._lock_timeout):
                listing = marked.get(spec.organization)
                if self._store.load_token(spec.name) is not None and not replace_existing:
                    results.append(not_adopted(spec, _ALREADY_MANAGED))
                    continue
                results.append(
                    adopt_into(self._store, spec, listing, self._sinks, self._clock.now())
                )
        return results

    def revoke(
        self, spec: TokenSpec, *, previous: bool, where: str
    ) -> tuple[list[IssuedPat], list[str]]:
        """Revoke the token's current PAT, or every previous PAT, now, under its lock; audit and
        tag each. A previous PAT a rotation keeps for its grace period is revoked through that
        rotation's journaled tail (its grace period ends now).

        Returns the revoked PATs and a note per sink that could not tag one.

        Raises:
            ConfigError: the token has no such PAT in the state store.
            AzureDevOpsError: the revoke failed (nothing was recorded).
            StateLocked: another run is rotating the token.
        """
        with self._store.token_lock(spec.name, timeout=self._lock_timeout):
            revoked: list[IssuedPat] = []
            notes: list[str] = []
            for op in self._store.operations(spec.name, unfinished=True) if previous else ():
                if op.step is Step.REVOKE_PENDING and op.previous is not None:
                    runner = self._runner(spec, self._sinks(spec))
                    op, _ = self._drive(replace(op, revoke_at=self._clock.now()), runner)
                    notes += runner.notes
                    if op.step in (Step.REVOKED, Step.DONE) and op.previous is not None:
                        revoked.append(op.previous)
            state = self._store.load_token(spec.name)
            if revoked and (state is None or state.previous is None):
                return revoked, notes
            target, more = tail.revoke_now(
                store=self._store,
                issuer=self._issuer,
                spec=spec,
                sinks=lambda: self._sinks(spec),
                previous=previous,
                now=self._clock.now,
                where=where,
            )
            return [*revoked, target], notes + more

    # --- one token -----------------------------------------------------------------------------

    def _run_token(
        self,
        spec: TokenSpec,
        listing: list[IssuedPat] | str | None,
        findings: list[Finding],
        *,
        force: bool,
    ) -> TokenOutcome:
        try:
            check_spec(spec)
            sinks = self._sinks(spec)
        except PatwardenError as exc:  # a bad spec or a sink that cannot be built
            return self._failed(spec, exc.message)
        state = self._store.load_token(spec.name)
        unfinished = list(self._store.operations(spec.name, unfinished=True))
        lost = isinstance(listing, list) and bool(marked_for(spec.name, listing))
        run = TokenRun(spec=spec, sinks=sinks, listing=listing, findings=findings)
        if state is None and not unfinished and lost:
            detail = (
                f"Azure DevOps has PATs marked for {spec.name} but the state store has no "
                "record of it (was the state file lost or replaced?)"
            )
            missing = _finding(FindingKind.STATE_MISSING, spec.name, detail)
            run.record(self._store, self._clock.now(), [missing])
            return self._failed(spec, detail + "; run `patwarden adopt` first")
        drift = self._reconcile(run, unfinished)
        stuck = [
            op for op in self._store.operations(spec.name, unfinished=True) if records.is_active(op)
        ]
        if stuck:
            return self._failed(
                spec, f"interrupted operation {stuck[0].operation_id} could not be resumed yet"
            )
        gone = converge.forget_lost(run, self._store, self._issuer, self._clock.now())
        state = self._store.load_token(spec.name)
        decision = decide(spec=spec, issued=state.current if state else None, now=self._clock.now())
        if decision.would_loop:
            return self._failed(spec, decision.reason)
        reasons = [r for r in (gone, records.stranded_reason(state)) if r]
        reasons += converge.drift_reasons(drift, records.pat_id(state.current if state else None))
        if not decision.is_due and not force and not reasons:
            outcome = TokenOutcome(
                token_name=spec.name,
                kind=OutcomeKind.NOT_DUE,
                reason=decision.reason,
                current_authorization_id=records.pat_id(state.current if state else None),
                due_at=decision.due_at,
                notes=tuple(run.notes),
            )
            return self._checked(run, outcome, reuse=True)  # no sink written since read
        if gone or not decision.is_due:
            reason = "forced" if force and not reasons else "; ".join(reasons)
        else:
            reason = decision.reason
        failed = converge.preflight(sinks, read=run.read, versions=run.versions)
        if failed:
            detail = "preflight failed, no PAT was created: " + "; ".join(failed)
            found = _finding(FindingKind.PREFLIGHT_FAILED, spec.name, detail)
            run.record(self._store, self._clock.now(), [found])
            return self._checked(run, self._failed(spec, detail))
        outcome = self._rotate(run, state, reason=reason)
        if outcome.kind is OutcomeKind.ROTATED:
            sweep(
                run, self._store, self._issuer, self._clock.now(), self._orphan_margin
            )  # the PATs the rotation left behind: stranded, no longer served
        return self._checked(run, outcome)

    def _reconcile(self, run: TokenRun, unfinished: list[Operation]) -> list[Finding]:
        """Resume, revoke what is over, sweep orphans; return the drift found (not yet acted on)."""
        spec, sinks = run.spec, run.sinks
        found: list[Finding] = []
        for op in unfinished:
            before = op.step
            runner = self._runner(spec, sinks)
            op, stopped = self._drive(op, runner)
            run.revoked |= tail.revoked_ids(op)
            finding = tail.resumed_finding(before, op, self._clock.now())
            if finding is not None:
                found.append(finding)
                if finding.kind is FindingKind.RESUMED:
                    run.notes.append(finding.detail)
            run.notes += runner.notes
            if stopped:
                run.notes.append(stopped)
        run.record(self._store, self._clock.now(), found)
        sweep(run, self._store, self._issuer, self._clock.now(), self._orphan_margin)
        state = self._store.load_token(spec.name)
        if state is None:
            return []
        drift = find_drift(state=state, sinks=sinks, seen=run.versions)
        unread = {f.sink for f in drift if f.detail.startswith("could not read")}
        run.read = {k for k in sinks if state.current or state.sink(k)} - unread
        run.findings.extend(drift)
        return drift

    def _checked(
        self, run: TokenRun, outcome: TokenOutcome, *, reuse: bool = False
    ) -> TokenOutcome:
        now = self._clock.now()
        found = converge.end_problems(run, self._store, self._issuer, now, reuse=reuse)
        return replace(outcome, problems=tuple(found))

    def _rotate(
        self, run: TokenRun, state: ManagedTokenState | None, *, reason: str
    ) -> TokenOutcome:
        spec, sinks = run.spec, run.sinks
        now = self._clock.now()
        notes = [
            *run.notes,
            *converge.left_valid(state, self._store.operations(spec.name, unfinished=True), now),
        ]
        op = records.new_operation(
            spec=spec,
            state=state,
            sinks=tuple(sinks),
            operation_id=self._new_operation_id(),
            now=now,
        )
        self._store.record(op)
        runner = self._runner(spec, sinks)
        runner.read.update(run.versions)  # read since the last write: the capture reuses it
        op, stopped = self._drive(op, runner)
        if op.new is not None:
            run.created.add(op.new.authorization_id)
        run.revoked |= tail.revoked_ids(op)
        notes = [*notes, *runner.notes]
        notes += records.clamp_note(spec, op)
        state = self._store.load_token(spec.name)
        return records.outcome_of(op, state, reason=stopped or reason, notes=notes)

    # --- the loop: persist, then act -----------------------------------------------------------

    def _runner(self, spec: TokenSpec, sinks: Mapping[str, Sink]) -> ActionRunner:
        promote = partial(tail.promote, store=self._store, spec=spec, now=self._clock.now)
        return ActionRunner(
            issuer=self._issuer,
            sinks=sinks,
            now=self._clock.now,
            promote=lambda op, secret: promote(op=op, hook=self._on_promoted, secret=secret),
        )

    def _drive(self, op: Operation, runner: ActionRunner) -> tuple[Operation, str | None]:
        """Feed events to the machine until it waits or finishes; persist before every action."""
        event: Event = Resume(at=self._clock.now(), has_secret=runner.secret is not None)
        while True:
            step = transition(op, event)
            before, entered = op.step, step.state.step is not op.step
            op = step.state
            now = self._clock.now()
            after = records.state_after(op, self._store.load_token(op.token_name), now)
            # Audit a step once, when the operation enters it, not on every event it handles there.
            audit = records.operation_audit(op, now, came_from=before) if entered else []
            self._store.record(op, token=after, audit=audit)
            if step.action is None or isinstance(step.action, Wait):
                return op, None
            try:
                event = runner.perform(step.action, op)
            except StopOperation as stop:
                return op, stop.reason

    # --- helpers -------------------------------------------------------------------------------

    def _sinks(self, spec: TokenSpec) -> dict[str, Sink]:
        sinks: dict[str, Sink] = {}
        for sink in self._resolve_sinks(spec):
            key = sink.describe()
            if key in sinks:
                raise ConfigError(
                    f"tokens.{spec.name}.sinks names {key} twice.",
                    hint="Remove the duplicate sink.",
                )
            sinks[key] = sink
        return sinks

    def _list_marked(self, orgs: set[str]) -> dict[str, list[IssuedPat] | str]:
        return converge.list_marked(self._issuer, orgs)

    def _dry_run(
        self, spec: TokenSpec, listing: list[IssuedPat] | str | None, findings: list[Finding]
    ) -> TokenOutcome:
        try:
            check_spec(spec)
            sinks = self._sinks(spec)
        except PatwardenError as exc:  # a bad spec or a sink that cannot be built
            return self._failed(spec, exc.message)
        outcome, found = preview_token(
            spec=spec,
            state=self._store.load_token(spec.name),
            operations=self._store.operations(spec.name, unfinished=True),
            listing=listing if isinstance(listing, list) else None,
            sinks=sinks,
            issuer=self._issuer,
            now=self._clock.now(),
            margin=self._orphan_margin,
            history=self._store.operations(spec.name),
        )
        findings.extend(found)
        return outcome

    def _failed(self, spec: TokenSpec, reason: str) -> TokenOutcome:
        state = self._store.load_token(spec.name)
        return TokenOutcome(
            token_name=spec.name,
            kind=OutcomeKind.FAILED,
            reason=reason,
            current_authorization_id=records.pat_id(state.current if state else None),
        )


def _finding(kind: FindingKind, token: str, detail: str, pat_id: str | None = None) -> Finding:
    return Finding(kind=kind, token_name=token, detail=detail, authorization_id=pat_id)
