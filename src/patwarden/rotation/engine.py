"""The rotation engine: runs the protocol of design §2 through the ports, resumably.

For every configured token, under that token's cross-process lock: reconcile (resume interrupted
operations, revoke previous PATs whose grace period ended, revoke orphans, report drift), then
plan (is it due, by the *issued* validTo?) and, if due, rotate: create → distribute → verify →
promote → revoke the previous PAT once ``revoke_after`` has passed. Each step is journaled before
its action runs (:mod:`patwarden.domain.rotation`), so a crash at any point resumes on the next
run. The result is a typed :class:`~patwarden.rotation.outcomes.TokenOutcome` per token.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import timedelta

from patwarden.domain.marker import format_marker
from patwarden.domain.messages import Event, Resume, Wait
from patwarden.domain.models import (
    IssuedPat,
    ManagedTokenState,
    TokenSpec,
)
from patwarden.domain.operation import Operation, SinkProgress, Step
from patwarden.domain.rotation import transition
from patwarden.domain.schedule import ScheduleError, check_spec, decide
from patwarden.errors import ConfigError, PatwardenError
from patwarden.rotation.actions import ActionRunner, StopOperation, describe_error
from patwarden.rotation.outcomes import (
    AdoptResult,
    Finding,
    FindingKind,
    OutcomeKind,
    Promotion,
    RunReport,
    TokenOutcome,
    TokenPlan,
)
from patwarden.rotation.ports import Clock, PatIssuer, Sink, StateLocked, StateStore
from patwarden.rotation.reconcile import (
    adopt_token,
    find_drift,
    marked_for,
    preview_token,
    revoke_orphans,
)
from patwarden.rotation.records import (
    is_active,
    operation_audit,
    outcome_of,
    pat_id,
    promoted_state,
    state_after,
    state_audit,
)

__all__ = ["PromotionHook", "RotationEngine", "SinkResolver"]

SinkResolver = Callable[[TokenSpec], Sequence[Sink]]
"""Builds the live sinks of a token (the lead wires config sink specs to sink objects)."""

PromotionHook = Callable[[TokenSpec, Promotion], Sequence[str]]
"""Runs a token's hooks after promotion; returns secret-free notes for the outcome."""

ORPHAN_MARGIN_DEFAULT = 3600.0
_CLAMP_NOTE_TOLERANCE = timedelta(minutes=5)


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
        plans = []
        now = self._clock.now()
        for spec in specs:
            state = self._store.load_token(spec.name)
            unfinished = tuple(
                op.operation_id
                for op in self._store.operations(spec.name, unfinished=True)
                if op.step is not Step.REVOKE_PENDING
            )
            problem = None
            try:
                check_spec(spec)
            except ScheduleError as exc:
                problem = exc.message
            decision = decide(spec=spec, issued=state.current if state else None, now=now)
            plans.append(
                TokenPlan(
                    token_name=spec.name,
                    decision=decision,
                    state=state,
                    unfinished_operations=unfinished,
                    problem=problem or decision.problem,
                )
            )
        return plans

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
                if self._store.load_token(spec.name) is not None and not replace_existing:
                    results.append(
                        AdoptResult(
                            token_name=spec.name,
                            adopted=False,
                            current_authorization_id=None,
                            detail="already managed; pass --replace to rebuild it anyway",
                        )
                    )
                    continue
                listing = marked.get(spec.organization)
                if not isinstance(listing, list):
                    detail = f"cannot list PATs in {spec.organization}: {listing}"
                    results.append(
                        AdoptResult(
                            token_name=spec.name,
                            adopted=False,
                            current_authorization_id=None,
                            detail=detail,
                        )
                    )
                    continue
                state, result = adopt_token(
                    spec=spec, marked=listing, sinks=self._sinks(spec), now=self._clock.now()
                )
                now = self._clock.now()
                audit = state_audit("adopted", state, result.detail, now)
                self._store.save_token(state, audit=[audit])
                results.append(result)
        return results

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
        if state is None and not unfinished and lost:
            detail = (
                f"Azure DevOps has PATs marked for {spec.name} but the state store has no "
                "record of it (was the state file lost or replaced?)"
            )
            findings.append(_finding(FindingKind.STATE_MISSING, spec.name, detail))
            return self._failed(spec, detail + "; run `patwarden adopt` first")
        notes = self._reconcile(spec, sinks, unfinished, listing, findings)
        stuck = [op for op in self._store.operations(spec.name, unfinished=True) if is_active(op)]
        if stuck:
            return self._failed(
                spec, f"interrupted operation {stuck[0].operation_id} could not be resumed yet"
            )
        state = self._store.load_token(spec.name)
        decision = decide(spec=spec, issued=state.current if state else None, now=self._clock.now())
        if decision.would_loop:
            return self._failed(spec, decision.reason)
        stranded = _stranded(state)
        if not decision.is_due and not force and stranded is None:
            return TokenOutcome(
                token_name=spec.name,
                kind=OutcomeKind.NOT_DUE,
                reason=decision.reason,
                current_authorization_id=pat_id(state.current if state else None),
                due_at=decision.due_at,
                notes=tuple(notes),
            )
        reason = decision.reason if decision.is_due else ("forced" if force else str(stranded))
        return self._rotate(spec, state, sinks, reason=reason, notes=notes)

    def _reconcile(
        self,
        spec: TokenSpec,
        sinks: Mapping[str, Sink],
        unfinished: list[Operation],
        listing: list[IssuedPat] | str | None,
        findings: list[Finding],
    ) -> list[str]:
        notes: list[str] = []
        revoked: set[str] = set()  # revoked by the resumed operations, still in ``listing``
        for op in unfinished:
            before = op.step
            op, stopped = self._drive(op, self._runner(spec, sinks))
            if op.step is Step.DONE and op.previous is not None:
                revoked.add(op.previous.authorization_id)
            if op.new_revoked and op.new is not None:
                revoked.add(op.new.authorization_id)
            if before is not Step.REVOKE_PENDING:
                detail = f"operation {op.operation_id} resumed from {before.value}: {op.step.value}"
                if op.reason:
                    detail += f" ({op.reason})"
                findings.append(_finding(FindingKind.RESUMED, spec.name, detail))
                notes.append(detail)
            elif op.step is Step.DONE and op.previous is not None:
                findings.append(
                    _finding(
                        FindingKind.REVOKED_PREVIOUS,
                        spec.name,
                        f"revoked previous PAT {op.previous.authorization_id}",
                        op.previous.authorization_id,
                    )
                )
            elif op.note and op.revoke_at is not None and op.revoke_at <= self._clock.now():
                findings.append(_finding(FindingKind.REVOKE_DEFERRED, spec.name, op.note))
            if stopped:
                notes.append(stopped)
        state = self._store.load_token(spec.name)
        if state is None:
            return notes
        if isinstance(listing, list):
            findings.extend(
                revoke_orphans(
                    spec=spec,
                    state=state,
                    operations=self._store.operations(spec.name, unfinished=True),
                    marked=[pat for pat in listing if pat.authorization_id not in revoked],
                    sinks=sinks,
                    issuer=self._issuer,
                    now=self._clock.now(),
                    margin=self._orphan_margin,
                    dry_run=False,
                )
            )
        elif listing is not None:
            notes.append(f"orphan check skipped: {listing}")
        findings.extend(find_drift(state=state, sinks=sinks))
        return notes

    def _rotate(
        self,
        spec: TokenSpec,
        state: ManagedTokenState | None,
        sinks: Mapping[str, Sink],
        *,
        reason: str,
        notes: list[str],
    ) -> TokenOutcome:
        now = self._clock.now()
        operation_id = self._new_operation_id()
        op = Operation(
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
        self._store.record(op)
        runner = self._runner(spec, sinks)
        op, stopped = self._drive(op, runner)
        if op.new is not None and spec.lifetime - op.new.lifetime > _CLAMP_NOTE_TOLERANCE:
            notes.append(
                f"Azure DevOps issued a {op.new.lifetime} lifetime instead of {spec.lifetime} "
                "(a lifespan policy clamped it); the schedule follows the issued validTo"
            )
        state = self._store.load_token(spec.name)
        return outcome_of(op, state, reason=stopped or reason, notes=notes)

    # --- the loop: persist, then act -----------------------------------------------------------

    def _runner(self, spec: TokenSpec, sinks: Mapping[str, Sink]) -> ActionRunner:
        return ActionRunner(
            issuer=self._issuer,
            sinks=sinks,
            now=self._clock.now,
            promote=lambda op: self._promote(spec, op),
        )

    def _drive(self, op: Operation, runner: ActionRunner) -> tuple[Operation, str | None]:
        """Feed events to the machine until it waits or finishes; persist before every action."""
        event: Event = Resume(at=self._clock.now(), has_secret=runner.secret is not None)
        while True:
            step = transition(op, event)
            entered = step.state.step is not op.step
            op = step.state
            now = self._clock.now()
            after = state_after(op, self._store.load_token(op.token_name), now)
            # Audit a step once, when the operation enters it, not on every event it handles there.
            audit = operation_audit(op, now) if entered else []
            self._store.record(op, token=after, audit=audit)
            if step.action is None or isinstance(step.action, Wait):
                return op, None
            try:
                event = runner.perform(step.action, op)
            except StopOperation as stop:
                return op, stop.reason

    def _promote(self, spec: TokenSpec, op: Operation) -> None:
        now = self._clock.now()
        state = self._store.load_token(spec.name) or ManagedTokenState(
            token_name=spec.name, organization=spec.organization
        )
        promoted = promoted_state(state=state, op=op, revoke_after=spec.revoke_after, now=now)
        if promoted is None or promoted.current is None:
            return
        detail = f"operation {op.operation_id}"
        self._store.save_token(promoted, audit=[state_audit("promoted", promoted, detail, now)])
        if self._on_promoted is None:
            return
        promotion = Promotion(
            token_name=spec.name,
            organization=spec.organization,
            operation_id=op.operation_id,
            authorization_id=promoted.current.authorization_id,
            valid_to=promoted.current.valid_to,
            previous_authorization_id=pat_id(promoted.previous),
            revoke_at=promoted.revoke_at,
            sinks=tuple(p.sink for p in op.sinks),
        )
        try:
            self._on_promoted(spec, promotion)
        except Exception as exc:  # a hook must never undo a finished rotation
            audit = state_audit("hook_failed", promoted, describe_error(exc), self._clock.now())
            self._store.append_audit(audit)

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
        listed: dict[str, list[IssuedPat] | str] = {}
        for org in sorted(orgs):
            try:
                listed[org] = list(self._issuer.list_marked(organization=org))
            except Exception as exc:
                listed[org] = describe_error(exc)
        return listed

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
        )
        findings.extend(found)
        return outcome

    def _failed(self, spec: TokenSpec, reason: str) -> TokenOutcome:
        state = self._store.load_token(spec.name)
        return TokenOutcome(
            token_name=spec.name,
            kind=OutcomeKind.FAILED,
            reason=reason,
            current_authorization_id=pat_id(state.current if state else None),
        )


def _stranded(state: ManagedTokenState | None) -> str | None:
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


def _finding(kind: FindingKind, token: str, detail: str, pat_id: str | None = None) -> Finding:
    return Finding(kind=kind, token_name=token, detail=detail, authorization_id=pat_id)
