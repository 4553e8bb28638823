"""Everything a rotation run needs, built once from a validated
:class:`~patwarden.config.model.Config`.

:class:`Runtime` owns the credentials (one per identity), one rate limiter per identity shared by
every client and thread, the sinks (:class:`~patwarden.sinks.wiring.SinkWiring`), one PAT issuer
per rotator identity and the state store at ``state_dir/state.db``. It runs the engine over a
bounded worker pool (:mod:`patwarden.rotation.fleet`) and finishes each token's run: reconcile
findings go to the audit log, Key Vault versions of revoked PATs are tagged ``revokedAt``, and the
notes of
the ``on_rotate`` hooks join the token's outcome.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from patwarden.app.issuers import OfflineIssuer
from patwarden.app.specs import token_specs
from patwarden.domain.models import AuditRecord, IssuedPat, TokenSpec
from patwarden.domain.operation import Step
from patwarden.errors import ConfigError, PatwardenError
from patwarden.rotation.actions import describe_error
from patwarden.rotation.adapters import AzdoPatIssuer, SystemClock
from patwarden.rotation.engine import RotationEngine
from patwarden.rotation.fleet import (
    FleetProgress,
    FleetReport,
    SharedListingIssuer,
    TokenRunner,
    run_fleet,
)
from patwarden.rotation.outcomes import (
    AdoptResult,
    Finding,
    FindingKind,
    Promotion,
    RunReport,
    TokenPlan,
)
from patwarden.rotation.ports import Clock, PatIssuer, Sink

if TYPE_CHECKING:
    from patwarden.app.context import AppContext
    from patwarden.config.model import Config
    from patwarden.state.sqlite import SqliteStateStore

__all__ = ["STATE_FILE", "HookFailed", "Runtime", "token_specs"]

log = logging.getLogger(__name__)
STATE_FILE = "state.db"
# Findings worth a line in the audit log (drift and the like are reported by every run instead).
_AUDITED = {
    FindingKind.RESUMED,
    FindingKind.REVOKED_PREVIOUS,
    FindingKind.REVOKE_DEFERRED,
    FindingKind.ORPHAN_REVOKED,
    FindingKind.STATE_MISSING,
}
_REVOKING = {FindingKind.REVOKED_PREVIOUS, FindingKind.ORPHAN_REVOKED}


class HookFailed(PatwardenError):
    """An ``on_rotate`` hook failed after a rotation (which stands); the engine audits it."""


class Runtime:
    """Credentials, clients, sinks, issuers and the state store of one configuration.

    Thread-safe where the fleet needs it; close it (or use ``with``) when done.
    """

    def __init__(
        self,
        *,
        context: AppContext | None = None,
        config: Config | None = None,
        clock: Clock | None = None,
    ) -> None:
        """Take the pieces of *context* (the CLI's, which closes them), or of a new
        :class:`~patwarden.app.context.AppContext` over *config* and *clock* (closed by
        :meth:`close`)."""
        from patwarden.app.context import AppContext

        if context is None:
            if config is None:
                raise TypeError("Runtime needs a context or a config")
            context = AppContext(config=config, clock=clock or SystemClock())
        self.context = context
        self.config = context.config
        self.clock: Clock = context.clock
        self.credentials = context.credentials
        self.rate_limiters = context.rate_limiters
        self.wiring = context.wiring
        self._lock = threading.RLock()
        self._issuers: dict[str, PatIssuer] = {}
        self._hook_notes: dict[str, list[str]] = {}

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every client and credential built so far."""
        self.wiring.close()
        self.credentials.close()

    # --- what is configured ----------------------------------------------------------------------

    @property
    def state_path(self) -> Path:
        """The state store: ``state_dir/state.db``."""
        return self.config.state_dir / STATE_FILE

    def specs(self, names: Collection[str] = ()) -> list[TokenSpec]:
        """The configured tokens (all, or those in *names*); see :func:`token_specs`."""
        return token_specs(self.config, names=names)

    def rotator_for(self, token_name: str) -> str:
        """The identity that creates and revokes the PATs of *token_name*."""
        token = self.config.tokens.get(token_name)
        return (token.rotator if token else None) or self.config.rotator

    def open_store(self) -> SqliteStateStore:
        """Open the state store (created 0600 in a 0700 directory on first use).

        Raises:
            StateError: the file cannot be opened, is damaged, or is from a newer patwarden.
        """
        from patwarden.state.sqlite import SqliteStateStore

        return SqliteStateStore(path=self.state_path, now=self.clock.now)

    def issuer(self, rotator: str) -> PatIssuer:
        """The PAT issuer of *rotator* (one per identity, sharing its client and rate limiter)."""
        with self._lock:
            issuer = self._issuers.get(rotator)
            if issuer is None:
                full_access = frozenset(
                    name
                    for name, token in self.config.tokens.items()
                    if token.allow_full_access and self.rotator_for(name) == rotator
                )
                issuer = AzdoPatIssuer(
                    client=self.wiring.azure_devops(rotator),
                    clock=self.clock,
                    full_access_tokens=full_access,
                )
                self._issuers[rotator] = issuer
            return issuer

    def engine(self, *, store: SqliteStateStore, issuer: PatIssuer) -> RotationEngine:
        """An engine over *store* (one per thread) and *issuer*, with the configured hooks."""
        settings = self.config.rotation
        return RotationEngine(
            issuer=issuer,
            store=store,
            clock=self.clock,
            sinks=self.wiring.resolve,
            on_promoted=self._on_promoted,
            lock_timeout=settings.lock_timeout.total_seconds(),
            orphan_margin_seconds=settings.orphan_margin.total_seconds(),
        )

    # --- commands --------------------------------------------------------------------------------

    def plan(self, specs: Sequence[TokenSpec]) -> list[TokenPlan]:
        """What would rotate and why; reads only the state store (no network, no secret).

        Raises:
            StateError: the state store cannot be opened.
        """
        with self.open_store() as store:
            return RotationEngine(
                issuer=OfflineIssuer(), store=store, clock=self.clock, sinks=lambda _: ()
            ).plan(specs)

    def rotate(
        self,
        specs: Sequence[TokenSpec],
        *,
        dry_run: bool = False,
        force: Collection[str] = (),
        concurrency: int | None = None,
        on_progress: Callable[[FleetProgress], None] | None = None,
    ) -> FleetReport:
        """Reconcile and rotate *specs* concurrently (``rotation.concurrency`` workers by default).

        Raises:
            StateError: the state store cannot be opened (checked before any token runs).
        """
        self.open_store().close()  # a damaged or newer state file stops the run up front
        self.check_sign_in(specs)
        issuers: dict[str, PatIssuer] = {}

        def shared(rotator: str) -> PatIssuer:
            with self._lock:
                if rotator not in issuers:
                    issuers[rotator] = SharedListingIssuer(self.issuer(rotator))
                return issuers[rotator]

        @contextmanager
        def worker() -> Iterator[TokenRunner]:
            with self.open_store() as store:
                engines: dict[str, RotationEngine] = {}

                def run_one(spec: TokenSpec) -> RunReport:
                    rotator = self.rotator_for(spec.name)
                    if rotator not in engines:
                        engines[rotator] = self.engine(store=store, issuer=shared(rotator))
                    report = engines[rotator].run([spec], dry_run=dry_run, force=force)
                    return report if dry_run else self._settle(store, spec, report)

                yield run_one

        return run_fleet(
            specs=specs,
            worker=worker,
            concurrency=concurrency or self.config.rotation.concurrency,
            on_progress=on_progress,
        )

    def check_sign_in(self, specs: Sequence[TokenSpec]) -> None:
        """Get a PAT-API token for each rotator of *specs* before any token runs.

        When one rotator of several cannot sign in, only its tokens fail (each says why).

        Raises:
            AuthError | ConfigError: no rotator of *specs* can sign in (e.g. nobody ran
                ``patwarden login``): the whole run would fail the same way.
        """
        from patwarden.azdo.constants import PAT_SCOPES

        failures: list[PatwardenError] = []
        rotators = list(dict.fromkeys(self.rotator_for(spec.name) for spec in specs))
        for rotator in rotators:
            try:
                self.credentials.get(rotator).get_token(*PAT_SCOPES)
            except PatwardenError as exc:
                failures.append(exc)
        if rotators and len(failures) == len(rotators):
            raise failures[0]

    def adopt(self, specs: Sequence[TokenSpec], *, replace_existing: bool) -> list[AdoptResult]:
        """Rebuild the state of *specs* from PAT markers and sink metadata (per rotator).

        Raises:
            StateError: the state store cannot be opened.
        """
        results: dict[str, AdoptResult] = {}
        with self.open_store() as store:
            for rotator in dict.fromkeys(self.rotator_for(s.name) for s in specs):
                group = [s for s in specs if self.rotator_for(s.name) == rotator]
                engine = self.engine(store=store, issuer=self.issuer(rotator))
                for result in engine.adopt(group, replace_existing=replace_existing):
                    results[result.token_name] = result
        return [results[spec.name] for spec in specs]

    def revoke(self, spec: TokenSpec, *, previous: bool = False) -> IssuedPat:
        """Revoke a managed token's current (or previous) PAT now and record it.

        After the current PAT is revoked the token has none, so the next ``rotate`` issues one.

        Raises:
            ConfigError: the token has no such PAT in the state store.
            AzureDevOpsError: the revoke failed (nothing was recorded).
            StateLocked: another run is rotating the token.
        """
        which = "previous" if previous else "current"
        with self.open_store() as store:
            timeout = self.config.rotation.lock_timeout.total_seconds()
            with store.token_lock(spec.name, timeout=timeout):
                state = store.load_token(spec.name)
                target = None if state is None else (state.previous if previous else state.current)
                if state is None or target is None:
                    raise ConfigError(
                        f"token {spec.name!r} has no {which} PAT in the state store "
                        f"{self.state_path}; nothing was revoked",
                        hint="see `patwarden status`; run `patwarden adopt` if the state was lost",
                    )
                issuer = self.issuer(self.rotator_for(spec.name))
                issuer.revoke(
                    organization=spec.organization, authorization_id=target.authorization_id
                )
                now = self.clock.now()
                if previous:
                    after = dataclasses.replace(
                        state, previous=None, revoke_at=None, updated_at=now
                    )
                else:
                    after = dataclasses.replace(state, current=None, updated_at=now)
                record = AuditRecord(
                    at=now,
                    kind="revoked_by_user",
                    token_name=spec.name,
                    authorization_id=target.authorization_id,
                    detail=(("which", which), ("organization", spec.organization)),
                )
                store.save_token(after, audit=[record])
            notes = self._mark_revoked(spec, [target.authorization_id])
            for note in notes:
                log.warning("%s", note)
        return target

    # --- after each token ------------------------------------------------------------------------

    def _on_promoted(self, spec: TokenSpec, promotion: Promotion) -> Sequence[str]:
        from patwarden.hooks.runner import HookEvent, HookSpec, run_hooks

        event = HookEvent.from_promotion(promotion)
        results = [
            result
            for hook in spec.hooks
            if isinstance(hook, HookSpec)
            for result in run_hooks(spec=hook, event=event, ca_bundle=self.wiring.ca_bundle)
        ]
        notes = [result.note() for result in results]
        with self._lock:
            self._hook_notes[spec.name] = notes
        failed = [result.note() for result in results if not result.ok]
        if failed:
            raise HookFailed("; ".join(failed))
        return notes

    def _settle(self, store: SqliteStateStore, spec: TokenSpec, report: RunReport) -> RunReport:
        """Audit what reconcile found, tag revoked Key Vault versions, attach the hook notes."""
        now = self.clock.now()
        revoked: list[str] = []
        records: list[AuditRecord] = []
        for finding in report.findings:
            if finding.kind in _REVOKING and finding.authorization_id:
                revoked.append(finding.authorization_id)
            if finding.kind in _AUDITED:
                records.append(_finding_audit(finding, now))
        for outcome in report.outcomes:
            op = store.load_operation(outcome.operation_id) if outcome.operation_id else None
            if op is not None and op.step is Step.DONE and op.previous is not None:
                revoked.append(op.previous.authorization_id)
                records.append(
                    AuditRecord(
                        at=now,
                        kind="revoked_previous",
                        token_name=spec.name,
                        operation_id=op.operation_id,
                        authorization_id=op.previous.authorization_id,
                        detail=(("detail", "grace period over during this run"),),
                    )
                )
        for pat_id, record in _unrecorded_revocation(store, spec.name, revoked, now):
            revoked.append(pat_id)  # a run killed after the revoke never audited or tagged it
            records.append(record)
        for record in records:
            store.append_audit(record)
        notes = self._mark_revoked(spec, revoked) if revoked else []
        with self._lock:
            notes = self._hook_notes.pop(spec.name, []) + notes
        if not notes:
            return report
        outcomes = tuple(
            dataclasses.replace(o, notes=(*o.notes, *notes)) if o.token_name == spec.name else o
            for o in report.outcomes
        )
        return dataclasses.replace(report, outcomes=outcomes)

    def _mark_revoked(self, spec: TokenSpec, authorization_ids: Sequence[str]) -> list[str]:
        """Tag the versions holding revoked PATs in sinks that can (Key Vault); notes on failure."""
        notes = []
        try:
            sinks: Sequence[Sink] = self.wiring.resolve(spec)
        except PatwardenError as exc:
            return [f"could not tag revoked versions: {exc.message}"]
        for sink in sinks:
            mark: Callable[[str], int] | None = getattr(sink, "mark_revoked", None)
            if mark is None:
                continue
            for authorization_id in authorization_ids:
                try:
                    mark(authorization_id)
                except Exception as exc:  # a tag is bookkeeping: report it, never fail the run
                    notes.append(
                        f"{sink.describe()}: could not tag PAT {authorization_id} as revoked "
                        f"({describe_error(exc)})"
                    )
        return notes


def _unrecorded_revocation(
    store: SqliteStateStore, token_name: str, revoked: Sequence[str], now: datetime
) -> list[tuple[str, AuditRecord]]:
    """The previous PAT of the token's last finished rotation, if its revocation has no audit
    record: the run that revoked it died before auditing it and tagging its Key Vault versions."""
    done = [
        op
        for op in store.operations(token_name)
        if op.step is Step.DONE and op.previous is not None
    ]
    if not done or done[-1].previous is None:
        return []
    op, pat_id = done[-1], done[-1].previous.authorization_id
    if pat_id in revoked or any(
        record.kind == "revoked_previous" and record.authorization_id == pat_id
        for record in store.audit(since=op.started_at)
    ):
        return []
    record = AuditRecord(
        at=now,
        kind="revoked_previous",
        token_name=token_name,
        operation_id=op.operation_id,
        authorization_id=pat_id,
        detail=(("detail", "revoked by an earlier run that stopped before recording it"),),
    )
    return [(pat_id, record)]


def _finding_audit(finding: Finding, now: datetime) -> AuditRecord:
    detail: list[tuple[str, str | int | bool | None]] = [("detail", finding.detail)]
    if finding.sink:
        detail.append(("sink", finding.sink))
    return AuditRecord(
        at=now,
        kind=finding.kind.value,
        token_name=finding.token_name,
        authorization_id=finding.authorization_id,
        detail=tuple(detail),
    )
