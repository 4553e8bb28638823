"""The rotation engine: runs the protocol of design §2 through the ports, resumably.

For every configured token, under that token's cross-process lock: reconcile (resume interrupted
operations, revoke previous PATs whose grace period ended, revoke orphans, report drift), then
plan (is it due, by the *issued* validTo?) and, if due, rotate: create → distribute → verify →
promote → revoke the previous PAT once ``revoke_after`` has passed → tag its sink versions. Each
step is journaled before its action runs (:mod:`patwarden.domain.rotation`), so a crash at any
point resumes on the next run. Everything after a token's rotation — the audit of what reconcile
found, the revocation's audit record and tags, the hooks' notes — happens here, under the
token's lock (:mod:`patwarden.rotation.tail`). The result is a typed
:class:`~patwarden.rotation.outcomes.TokenOutcome` per token, hook notes included.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import timedelta

from patwarden.domain.messages import Event, Resume, Wait
from patwarden.domain.models import IssuedPat, ManagedTokenState, TokenSpec
from patwarden.domain.operation import Operation
from patwarden.domain.rotation import transition
from patwarden.domain.schedule import check_spec, decide
from patwarden.errors import ConfigError, PatwardenError
from patwarden.rotation import records, tail
from patwarden.rotation.actions import ActionRunner, StopOperation, describe_error
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
    adopt_token,
    find_drift,
    marked_for,
    not_adopted,
    preview_token,
    revoke_orphans,
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
        now = self._clock.now()
        return [
            records.token_plan(
                spec=spec,
                state=self._store.load_token(spec.name),
                operations=self._store.operations(spec.name, unfinished=True),
                now=now,
            )
            for spec in specs
        ]

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
                if not isinstance(listing, list):
                    detail = f"cannot list PATs in {spec.organization}: {listing}"
                    results.append(not_adopted(spec, detail))
                    continue
                state, result = adopt_token(
                    spec=spec, marked=listing, sinks=self._sinks(spec), now=self._clock.now()
                )
                now = self._clock.now()
                audit = records.state_audit("adopted", state, result.detail, now)
                self._store.save_token(state, audit=[audit])
                results.append(result)
        return results

    def revoke(self, spec: TokenSpec, *, previous: bool, where: str) -> tuple[IssuedPat, list[str]]:
        """Revoke the token's current (or previous) PAT now, under its lock; audit and tag it.

        Returns the revoked PAT and a note per sink that could not tag it.

        Raises:
            ConfigError: the token has no such PAT in the state store.
            AzureDevOpsError: the revoke failed (nothing was recorded).
            StateLocked: another run is rotating the token.
        """
        with self._store.token_lock(spec.name, timeout=self._lock_timeout):
            return tail.revoke_now(
                store=self._store,
                issuer=self._issuer,
                spec=spec,
                sinks=lambda: self._sinks(spec),
                previous=previous,
                now=self._clock.now,
                where=where,
            )

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
            missing = _finding(FindingKind.STATE_MISSING, spec.name, detail)
            tail.record_findings(
                store=self._store, sinks=sinks, findings=[missing], now=self._clock.now()
            )
            findings.append(missing)
            return self._failed(spec, detail + "; run `patwarden adopt` first")
        notes = self._reconcile(spec, sinks, unfinished, listing, findings)
        stuck = [
            op for op in self._store.operations(spec.name, unfinished=True) if records.is_active(op)
        ]
        if stuck:
            return self._failed(
                spec, f"interrupted operation {stuck[0].operation_id} could not be resumed yet"
            )
        state = self._store.load_token(spec.name)
        decision = decide(spec=spec, issued=state.current if state else None, now=self._clock.now())
        if decision.would_loop:
            return self._failed(spec, decision.reason)
        stranded = records.stranded_reason(state)
        if not decision.is_due and not force and stranded is None:
            return TokenOutcome(
                token_name=spec.name,
                kind=OutcomeKind.NOT_DUE,
                reason=decision.reason,
                current_authorization_id=records.pat_id(state.current if state else None),
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
        found: list[Finding] = []
        revoked: set[str] = set()  # revoked by the resumed operations, still in ``listing``
        for op in unfinished:
            before = op.step
            runner = self._runner(spec, sinks)
            op, stopped = self._drive(op, runner)
            revoked |= tail.revoked_ids(op)
            finding = tail.resumed_finding(before, op, self._clock.now())
            if finding is not None:
                found.append(finding)
                if finding.kind is FindingKind.RESUMED:
                    notes.append(finding.detail)
            notes += runner.notes
            if stopped:
                notes.append(stopped)
        state = self._store.load_token(spec.name)
        if state is not None and isinstance(listing, list):
            found.extend(
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
        elif state is not None and listing is not None:
            notes.append(f"orphan check skipped: {listing}")
        # Audited (and orphans tagged) under the lock, right after the revocations they record.
        notes += tail.record_findings(
            store=self._store, sinks=sinks, findings=found, now=self._clock.now()
        )
        findings.extend(found)
        if state is not None:
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
        op = records.new_operation(
            spec=spec,
            state=state,
            sinks=tuple(sinks),
            operation_id=self._new_operation_id(),
            now=self._clock.now(),
        )
        self._store.record(op)
        runner = self._runner(spec, sinks)
        op, stopped = self._drive(op, runner)
        notes = [*notes, *runner.notes]
        notes += records.clamp_note(spec, op)
        state = self._store.load_token(spec.name)
        return records.outcome_of(op, state, reason=stopped or reason, notes=notes)

    # --- the loop: persist, then act -----------------------------------------------------------

    def _runner(self, spec: TokenSpec, sinks: Mapping[str, Sink]) -> ActionRunner:
        return ActionRunner(
            issuer=self._issuer,
            sinks=sinks,
            now=self._clock.now,
            promote=lambda op: tail.promote(
                store=self._store, spec=spec, op=op, now=self._clock.now, hook=self._on_promoted
            ),
        )

    def _drive(self, op: Operation, runner: ActionRunner) -> tuple[Operation, str | None]:
        """Feed events to the machine until it waits or finishes; persist before every action."""
        event: Event = Resume(at=self._clock.now(), has_secret=runner.secret is not None)
        while True:
            step = transition(op, event)
            entered = step.state.step is not op.step
            op = step.state
            now = self._clock.now()
            after = records.state_after(op, self._store.load_token(op.token_name), now)
            # Audit a step once, when the operation enters it, not on every event it handles there.
            audit = records.operation_audit(op, now) if entered else []
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
            current_authorization_id=records.pat_id(state.current if state else None),
        )


def _finding(kind: FindingKind, token: str, detail: str, pat_id: str | None = None) -> Finding:
    return Finding(kind=kind, token_name=token, detail=detail, authorization_id=pat_id)
