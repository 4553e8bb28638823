"""Everything a rotation run needs, built once from a validated
:class:`~patwarden.config.model.Config`.

:class:`Runtime` owns the credentials (one per identity), one rate limiter per identity shared by
every client and thread, the sinks (:class:`~patwarden.sinks.wiring.SinkWiring`), one PAT issuer
per rotator identity and the state store at ``state_dir/state.db``. It runs the engine over a
bounded worker pool (:mod:`patwarden.rotation.fleet`). It only builds and hands over: everything
a token's run does, including the audit of what reconcile found, the tags of revoked PATs and the
notes of the ``on_rotate`` hooks on the token's outcome, happens in the engine under the token's
lock (:mod:`patwarden.rotation.tail`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from patwarden.app.memory import limit_malloc_arenas
from patwarden.app.specs import token_specs
from patwarden.clock import SystemClock
from patwarden.domain.models import IssuedPat, TokenSpec
from patwarden.errors import AuthError, PatwardenError
from patwarden.rotation import planning
from patwarden.rotation.fleet import (
    FleetProgress,
    FleetReport,
    SharedListingIssuer,
    TokenRunner,
    run_fleet,
)
from patwarden.rotation.outcomes import AdoptResult, Promotion, RunReport, TokenPlan
from patwarden.rotation.planning import last_sign_in
from patwarden.rotation.ports import Clock, HookFailed, PatIssuer, StateStore

if TYPE_CHECKING:
    from patwarden.app.context import AppContext
    from patwarden.config.model import Config
    from patwarden.rotation.engine import RotationEngine

__all__ = ["STATE_FILE", "HookFailed", "Runtime", "last_sign_in", "token_specs"]

log = logging.getLogger(__name__)
STATE_FILE = "state.db"


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

        self._owns_context = context is None
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

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every client and credential built so far (with the whole context when this
        runtime made it: its shared sink clients and state backends too)."""
        if self._owns_context:
            self.context.close()
            return
        self.wiring.close()
        self.credentials.close()

    # --- what is configured ----------------------------------------------------------------------

    @property
    def state_path(self) -> Path:
        """The SQLite state file (``state.path`` or ``state_dir/state.db``)."""
        return self.context.state_path

    @property
    def state_where(self) -> str:
        """Where the configured state lives, secret-free (path, ``postgresql://…``, blob URL)."""
        return self.context.state_where

    def specs(self, names: Collection[str] = ()) -> list[TokenSpec]:
        """The configured tokens (all, or those in *names*); see :func:`token_specs`."""
        return token_specs(self.config, names=names)

    def rotator_for(self, token_name: str) -> str:
        """The identity that creates and revokes the PATs of *token_name*."""
        token = self.config.tokens.get(token_name)
        return (token.rotator if token else None) or self.config.rotator

    def open_store(self) -> Any:
        """Open a store of the configured state (:meth:`AppContext.state_store`; the caller
        closes it; SQLite: created 0600 in a 0700 directory on first use).

        Raises:
            StateError: the state cannot be opened, is damaged, or is from a newer patwarden.
        """
        return self.context.state_store()

    def issuer(self, rotator: str) -> PatIssuer:
        """The PAT issuer of *rotator* (one per identity, sharing its client and rate limiter)."""
        from patwarden.rotation.adapters import AzdoPatIssuer  # httpx: not for offline commands

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

    def engine(self, *, store: StateStore, issuer: PatIssuer) -> RotationEngine:
        """An engine over *store* (one per thread) and *issuer*, with the configured hooks."""
        from patwarden.rotation.engine import RotationEngine  # not for `plan` and `status`

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
            return planning.plan(store, specs, now=self.clock.now())

    def preflight(self, spec: TokenSpec) -> list[str]:
        """Check each sink of *spec* as ``rotate`` does before it mints a PAT (the target exists,
        the writer may write it); one line per sink, ``<sink>: ok`` or ``<sink>: FAILED …``.
        Signs in as the sinks' writer identities; changes nothing."""
        from patwarden.rotation.converge import preflight
        from patwarden.rotation.reconcile import marked_for

        try:
            sinks = {sink.describe(): sink for sink in self.wiring.resolve(spec)}
        except PatwardenError as exc:
            return [f"FAILED: the sinks cannot be built: {exc.message}"]
        lines = []
        with self.open_store() as store:
            known = store.load_token(spec.name) is not None
        if not known:
            try:
                listed = self.issuer(self.rotator_for(spec.name)).list_marked(
                    organization=spec.organization
                )
            except PatwardenError as exc:
                lines.append(f"state: FAILED cannot list the marked PATs: {exc.message}")
            else:
                if marked_for(spec.name, listed):
                    lines.append(
                        f"state: FAILED Azure DevOps has PATs marked for {spec.name} but the "
                        "state store has no record of it; `rotate` refuses it until "
                        "`patwarden adopt` rebuilt its state"
                    )
        for key, sink in sinks.items():
            failed = preflight({key: sink})
            lines.append(
                f"{key}: FAILED {failed[0].removeprefix(key + ': ')}" if failed else f"{key}: ok"
            )
        return lines

    def rotate(
        self,
        specs: Sequence[TokenSpec],
        *,
        dry_run: bool = False,
        force: Collection[str] = (),
        concurrency: int | None = None,
        on_progress: Callable[[FleetProgress], None] | None = None,
    ) -> FleetReport:
        """Reconcile and rotate *specs* concurrently (up to ``rotation.concurrency`` workers).

        Raises:
            StateError: the state store cannot be opened (checked before any token runs).
        """
        self.open_store().close()  # a damaged or newer state file stops the run up front
        from patwarden.sinks.wiring import warming

        # The sinks' credentials come in the background while the rotators sign in and list.
        with warming(self.context.wiring.warmers(specs)):  # built here: no import in two threads
            self.check_sign_in(specs)
            return self._run_fleet(
                specs,
                dry_run=dry_run,
                force=force,
                concurrency=concurrency,
                on_progress=on_progress,
            )

    def _run_fleet(
        self,
        specs: Sequence[TokenSpec],
        *,
        dry_run: bool,
        force: Collection[str],
        concurrency: int | None,
        on_progress: Callable[[FleetProgress], None] | None,
    ) -> FleetReport:
        """The rest of :meth:`rotate`, its rotators signed in: the listings, then the workers."""
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
                    return engines[rotator].run([spec], dry_run=dry_run, force=force)

                yield run_one

        # Each organization's listing before the workers start: they all need it first, and the
        # pool grows only while its workers wait for their own requests (rotation/fleet.py).
        for rotator, organization in dict.fromkeys(
            (self.rotator_for(spec.name), spec.organization) for spec in specs
        ):
            # A failure is each token's to report: its run lists again (SharedListingIssuer).
            with suppress(Exception):
                shared(rotator).list_marked(organization=organization)
        workers = concurrency or self.config.rotation.concurrency
        if workers > 1 and len(specs) > 1:
            limit_malloc_arenas()  # many threads, one GIL: two arenas (app/memory.py)
        report = run_fleet(specs=specs, worker=worker, concurrency=workers, on_progress=on_progress)
        return replace(report, cause=self._sign_in_lost(specs)) if report.failed else report

    def _sign_in_lost(self, specs: Sequence[TokenSpec]) -> AuthError | None:
        """The sign-in failure of the run's rotators when each of them failed its last sign-in
        (their sessions were revoked mid-run): it explains every failure; None otherwise."""
        refusals = []
        for rotator in dict.fromkeys(self.rotator_for(spec.name) for spec in specs):
            refusal = getattr(self.credentials.get(rotator), "refusal", None)
            if not isinstance(refusal, AuthError):
                return None
            refusals.append(refusal)
        return refusals[0] if refusals else None

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
                self.record_sign_in(rotator, failure=exc.message)
            else:
                self.record_sign_in(rotator, failure=None)
        if rotators and len(failures) == len(rotators):
            raise failures[0]

    def record_sign_in(self, identity: str, *, failure: str | None) -> None:
        """Audit a failed sign-in of *identity* (``sign_in_failed``, which `status` shows until
        a later sign-in works: ``sign_in_ok``, written only after a failure). Best effort."""
        from patwarden.domain.models import AuditRecord
        from patwarden.errors import StateError

        try:
            with self.open_store() as store:
                if failure is None and last_sign_in(store, identity, self.clock.now()) is None:
                    return
                kind = "sign_in_ok" if failure is None else "sign_in_failed"
                detail = (("identity", identity), ("reason", failure))
                store.append_audit(AuditRecord(at=self.clock.now(), kind=kind, detail=detail))
        except StateError as exc:
            log.warning("could not record the sign-in of %s: %s", identity, exc.message)

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

    def revoke(self, spec: TokenSpec, *, previous: bool = False) -> list[IssuedPat]:
        """Revoke a managed token's current PAT (or every previous PAT) now and record it.

        After the current PAT is revoked the token has none, so the next ``rotate`` issues one.
        Rotating again inside a grace period leaves several previous PATs: each is revoked.

        Raises:
            ConfigError: the token has no such PAT in the state store.
            AzureDevOpsError: the revoke failed (nothing was recorded).
            StateLocked: another run is rotating the token.
        """
        with self.open_store() as store:
            engine = self.engine(store=store, issuer=self.issuer(self.rotator_for(spec.name)))
            targets, notes = engine.revoke(spec, previous=previous, where=self.state_where)
        for note in notes:
            log.warning("%s", note)
        return targets

    # --- the on_rotate hooks: the engine's promotion hook -----------------------------------------

    def _on_promoted(self, spec: TokenSpec, promotion: Promotion) -> Sequence[str]:
        from patwarden.hooks.runner import HookEvent, run_hooks

        event = HookEvent.from_promotion(promotion)
        results = [
            result
            for hook in spec.hooks
            for result in run_hooks(
                spec=hook, event=event, ca_bundle=self.wiring.ca_bundle, known=promotion.secrets
            )
        ]
        notes = [result.note() for result in results]
        failed = [result.note() for result in results if not result.ok]
        if failed:
            raise HookFailed("; ".join(failed), notes=notes)
        return notes
