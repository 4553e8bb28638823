"""The loop of ``patwarden serve``: when to check, rotate, probe sign-ins, back off, stop, reload.

Every ``check_interval`` (plus up to ``check_jitter``) a full pass checks every token's desired
state and runs the engine over all of them; between passes a token whose due time arrives runs on
its own. A token that fails waits ``backoff_min``, doubling up to ``backoff_max``, before it is
retried; a pass that fails as a whole (nobody can sign in) backs the whole service off the same
way. Every ``sign_in_check`` every identity in use is probed (the rotator redeems its refresh token,
which keeps the 90-day window open). Only the leader of the state rotates; another instance stands
by (:mod:`~patwarden.service.leadership`).

:meth:`Service.stop` (SIGTERM) takes no new batch; :meth:`Service.reload` (SIGHUP) loads the
config again before the next pass and keeps the old one if the new one is invalid.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from patwarden.app.context import AppContext
from patwarden.app.runtime import Runtime
from patwarden.domain.models import TokenSpec
from patwarden.errors import PatwardenError
from patwarden.rotation.outcomes import FindingKind, OutcomeKind, TokenOutcome
from patwarden.service.checks import PassResult, run_pass
from patwarden.service.leadership import Leadership
from patwarden.service.logs import log_event
from patwarden.service.metrics import Counters
from patwarden.service.notifier import Notifier
from patwarden.service.observe import observe
from patwarden.service.readiness import check_identities
from patwarden.service.snapshot import IdentityView, Snapshot, TokenView

__all__ = ["Backoff", "Service", "next_due"]

_MAX_SLEEP = 30.0  # never sleep longer than this: reloads, stops and new due times are seen soon
_AUDIT_REFRESH = timedelta(seconds=15)  # the status page's audit events: re-read at most this often
# What reconcile repaired, by the label of patwarden_repairs_total (and a "repair" log line).
_REPAIR_KINDS = {
    FindingKind.CURRENT_LOST: "current_lost",
    FindingKind.STRANDED_REVOKED: "stranded_revoked",
    FindingKind.ORPHAN_REVOKED: "orphan_revoked",
    FindingKind.REVOKED_PREVIOUS: "revoked_previous",
    FindingKind.RESUMED: "resumed",
}


class Backoff:
    """Per key: how many failures in a row, and when it may be tried again."""

    def __init__(self, *, low: timedelta, high: timedelta) -> None:
        self.low, self.high = low, high
        self._failures: dict[str, int] = {}
        self._until: dict[str, datetime] = {}

    def failed(self, key: str, now: datetime) -> datetime:
        count = self._failures.get(key, 0) + 1
        self._failures[key] = count
        wait = min(self.high, self.low * (2 ** min(count - 1, 30)))
        self._until[key] = now + wait
        return self._until[key]

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)
        self._until.pop(key, None)

    def blocked(self, key: str, now: datetime) -> bool:
        until = self._until.get(key)
        return until is not None and now < until

    def until(self, key: str) -> datetime | None:
        return self._until.get(key)


def next_due(
    tokens: Iterable[TokenView], backoff: Backoff, *, now: datetime, tick_at: datetime | None
) -> datetime:
    """The earliest due time (or backoff end) of *tokens* to wake for, at most ``_MAX_SLEEP`` away.

    A due time that passed while the last tick (begun at *tick_at*) ran, a long pass, is *now*:
    no tick has tried it yet. One already past when the last tick began is left to the next
    tick: that tick tried it, and a token that stays due without failing (skipped while another
    run holds it, or refused as a schedule that cannot work) must not make the loop spin.
    """
    soonest = now + timedelta(seconds=_MAX_SLEEP)
    for token in tokens:
        until = backoff.until(token.name)
        at = max(filter(None, (token.next_rotation, until)), default=None)
        if at is None:
            continue
        if at <= now and tick_at is not None and at > tick_at:
            return now  # came due during the last tick: run it without waiting
        if now < at < soonest:
            soonest = at
    return soonest


class Service:
    """One ``patwarden serve`` process's scheduler and what it knows."""

    def __init__(
        self, *, context: AppContext, load: Callable[[], AppContext], leadership: Leadership
    ) -> None:
        self.clock = context.clock
        self._context = context
        self._runtime = Runtime(context=context)
        self._load = load
        self.leadership = leadership
        self.counters = Counters()
        self.stopping = threading.Event()
        self._reload = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._owned: list[AppContext] = []  # contexts built on reload, closed by the service
        self._outcomes: dict[str, TokenOutcome] = {}
        self._identities: list[IdentityView] = []
        self._request_base = 0.0
        self._wait_base = 0.0
        self._last_pass: datetime | None = None
        self._tick_at: datetime | None = None  # when the last tick began: what it could see due
        self._audit_at: datetime | None = None
        self._snapshot = Snapshot(at=self.clock.now())
        self._notifier = self._new_notifier()
        self._reset_schedule()

    # --- what the endpoints read -----------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snapshot

    @property
    def runtime(self) -> Runtime:
        """The runtime of the configuration in force."""
        return self._runtime

    # --- control (the main thread calls these on a signal) ----------------------------------------

    def stop(self) -> None:
        self.stopping.set()
        self._wake.set()

    def reload(self) -> None:
        self._reload.set()
        self._wake.set()

    # --- the loop --------------------------------------------------------------------------------

    def run(self) -> None:
        """Run until :meth:`stop`; never raises for what it schedules."""
        while not self.stopping.is_set():
            if self._reload.is_set():
                self._apply_reload()
            now = self.clock.now()
            if not self.leadership.try_acquire(now=now):
                self._standby(now)
                continue
            if self._snapshot.role != "leader":
                log_event("leader", f"leading the state {self._runtime.state_path}")
                self._set(replace(self._snapshot, role="leader", leader=None))
            self._tick(now)
            self._sleep()
        self._set(replace(self._snapshot, role="stopping"))

    def _standby(self, now: datetime) -> None:
        holder = self.leadership.describe_holder()
        first = self._snapshot.role != "standby"
        self._set(replace(self._snapshot, role="standby", leader=holder, at=now))
        if first:
            log_event("standby", f"standing by: {holder} leads {self._runtime.state_path}")
        if now >= self._next_sign_in:
            self._check_sign_ins(now)
        self._refresh(now)  # what the leader did shows here too (read from the shared state)
        self._wake.wait(self.leadership.retry_interval.total_seconds())
        self._wake.clear()

    def _tick(self, now: datetime) -> None:
        self._tick_at = now
        if now >= self._next_sign_in:
            self._check_sign_ins(now)
        specs = self._runtime.specs()
        if now >= self._next_check:
            self._check_pass(specs, now)
        else:
            due = self._due(specs, now)
            if due:
                self._run(due, now=now)
        self._refresh(self.clock.now())

    def _check_pass(self, specs: Sequence[TokenSpec], now: datetime) -> None:
        eligible = [s for s in specs if not self._token_backoff.blocked(s.name, now)]
        result = self._run(eligible, now=now)
        if result.error is not None:
            until = self._pass_backoff.failed("pass", now)
            self.counters.add("patwarden_failures", "pass")
            log_event("pass_failed", f"{result.error.message}; next attempt {until.isoformat()}")
            self._next_check = until
        else:
            self._pass_backoff.succeeded("pass")
            self._next_check = self._after_interval(self.clock.now())
        self._last_pass = self.clock.now()

    def _due(self, specs: Sequence[TokenSpec], now: datetime) -> list[TokenSpec]:
        by_name = {spec.name: spec for spec in specs}
        try:
            plans = self._runtime.plan(specs)
        except PatwardenError as err:
            log_event("state_error", err.message)
            return []
        return [
            by_name[p.token_name]
            for p in plans
            if p.problem is None
            and (p.decision.is_due or p.unfinished_operations)
            and not self._token_backoff.blocked(p.token_name, now)
        ]

    def _run(self, specs: Sequence[TokenSpec], *, now: datetime) -> PassResult:
        result = run_pass(self._runtime, specs, stop=self.stopping)
        for finding in result.findings:
            if finding.kind in _REPAIR_KINDS:
                self.counters.add("patwarden_repairs", _REPAIR_KINDS[finding.kind])
                log_event(
                    "repair",
                    f"{finding.token_name}: {finding.kind.value}: {finding.detail}",
                    token=finding.token_name,
                    outcome=finding.kind.value,
                )
        after = self.clock.now()
        for outcome in result.outcomes:
            self._outcomes[outcome.token_name] = outcome
            if outcome.kind is not OutcomeKind.NOT_DUE:
                self.counters.add("patwarden_rotations", outcome.kind.value)
            if outcome.kind.is_ok:
                self._token_backoff.succeeded(outcome.token_name)
            else:
                self.counters.add("patwarden_failures", "rotation")
                self._token_backoff.failed(outcome.token_name, after)
            if outcome.kind is not OutcomeKind.NOT_DUE:
                level = 40 if not outcome.kind.is_ok else 20
                log_event(
                    outcome.kind.value,
                    f"{outcome.token_name}: {outcome.reason}",
                    level=level,
                    token=outcome.token_name,
                    operation_id=outcome.operation_id,
                    outcome=outcome.kind.value,
                )
        self._count_requests()
        return result

    def _check_sign_ins(self, now: datetime) -> None:
        context = self._runtime.context
        self._identities = check_identities(
            config=self._runtime.config, credentials=context.credentials, now=now
        )
        for identity in self._identities:
            self.counters.add("patwarden_requests", "entra")
            if not identity.ok:
                self.counters.add("patwarden_failures", "sign_in")
                log_event(
                    "sign_in_failed",
                    f"{identity.detail}" + (f" — {identity.fix}" if identity.fix else ""),
                    level=40,
                    identity=identity.name,
                )
        self._next_sign_in = now + self._runtime.config.service.sign_in_check

    def _refresh(self, now: datetime) -> None:
        base = replace(self._snapshot, last_pass_at=self._last_pass, next_pass_at=self._next_check)
        fresh_audit = self._audit_at is None or now - self._audit_at >= _AUDIT_REFRESH
        snap = observe(
            self._runtime,
            base=base,
            identities=self._identities,
            outcomes=self._outcomes,
            now=now,
            with_audit=fresh_audit,
        )
        if fresh_audit:
            self._audit_at = now
        self._set(snap)
        if snap.role == "leader" and self._identities:
            self._notifier.evaluate(snap, now=now)

    def _sleep(self) -> None:
        now = self.clock.now()
        wake = min(self._next_check, self._next_sign_in, self._next_due(now))
        seconds = min(max((wake - now).total_seconds(), 0.2), _MAX_SLEEP)
        self._wake.wait(seconds)
        self._wake.clear()

    def _next_due(self, now: datetime) -> datetime:
        return next_due(self._snapshot.tokens, self._token_backoff, now=now, tick_at=self._tick_at)

    # --- configuration ---------------------------------------------------------------------------

    def _apply_reload(self) -> None:
        self._reload.clear()
        try:
            context = self._load()
            context.config  # noqa: B018 - load and validate now, while the old one still runs
        except PatwardenError as err:
            log_event(
                "reload_failed",
                f"the new configuration is invalid, keeping the old one:\n{err}",
                level=40,
            )
            self._set(replace(self._snapshot, config_error=str(err)))
            return
        self._count_requests()
        totals = self.counters.snapshot()
        self._request_base = totals["patwarden_requests"].get(("azure_devops",), 0.0)
        self._wait_base = totals["patwarden_throttling_waits"].get(("azure_devops",), 0.0)
        old = self._runtime
        self._runtime = Runtime(context=context)
        self._owned.append(context)
        self._notifier = self._new_notifier()
        self._reset_schedule()
        if old.context in self._owned:
            self._owned.remove(old.context)
            old.context.close()
        log_event("reloaded", f"configuration reloaded from {context.config.source}")
        self._set(replace(self._snapshot, config_error=None))

    def _reset_schedule(self) -> None:
        settings = self._runtime.config.service
        now = self.clock.now()
        self._token_backoff = Backoff(low=settings.backoff_min, high=settings.backoff_max)
        self._pass_backoff = Backoff(low=settings.backoff_min, high=settings.backoff_max)
        self._next_check = now
        self._next_sign_in = now
        self._last_pass = None

    def _after_interval(self, now: datetime) -> datetime:
        settings = self._runtime.config.service
        jitter = settings.check_jitter.total_seconds() * random.random()  # noqa: S311 - spreading
        return now + settings.check_interval + timedelta(seconds=jitter)

    def _new_notifier(self) -> Notifier:
        from patwarden.identity.secret_refs import resolve_secret

        config = self._runtime.config
        credentials = self._runtime.context.credentials
        return Notifier(
            config=config,
            resolve=lambda ref: resolve_secret(ref, credentials=credentials, azure=config.azure),
            counters=self.counters,
        )

    # --- helpers ---------------------------------------------------------------------------------

    def _count_requests(self) -> None:
        context = self._runtime.context
        sent = sum(context.requests_sent(name) for name in self._runtime.config.identities)
        self.counters.set_at_least(
            "patwarden_requests", "azure_devops", value=self._request_base + sent
        )
        waits = sum(limiter.waits for limiter in context.rate_limiters.limiters())
        self.counters.set_at_least(
            "patwarden_throttling_waits", "azure_devops", value=self._wait_base + waits
        )

    def _set(self, snapshot: Snapshot) -> None:
        with self._lock:
            self._snapshot = snapshot

    def close(self) -> None:
        """Close the contexts built on reload (the CLI closes the first one)."""
        for context in self._owned:
            context.close()
        self._owned.clear()
        self.leadership.release()
