"""``/metrics``: Prometheus exposition through the official ``prometheus-client`` library.

A custom collector renders the latest :class:`~patwarden.service.snapshot.Snapshot` and the
service's counters at scrape time, so the values match the state store as of the last pass and a
scrape never calls Azure. Names follow the Prometheus conventions (``patwarden_`` prefix, base
units, ``_seconds`` timestamps, ``_total`` counters); every metric is documented in
``docs/service.md``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from patwarden.rotation.outcomes import OutcomeKind
from patwarden.service.snapshot import Snapshot

__all__ = ["CONTENT_TYPE", "COUNTERS", "Counters", "MetricsCollector", "render_metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# name (without _total) -> (help, label names)
COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "patwarden_rotations": ("Token runs by outcome (not_due runs are not counted).", ("outcome",)),
    "patwarden_failures": (
        "Failures by kind: rotation, sign_in, pass, notification.",
        ("kind",),
    ),
    "patwarden_repairs": (
        "Repairs by reconcile, by kind: current_lost (a current PAT revoked, expired or gone "
        "replaced), stranded_revoked, orphan_revoked, revoked_previous, resumed.",
        ("kind",),
    ),
    "patwarden_requests": (
        "Requests sent by service: azure_devops (the Azure DevOps clients), entra (sign-in "
        "checks), notification channels (webhook, teams, slack, email).",
        ("service",),
    ),
    "patwarden_throttling_waits": (
        "Times a request waited because the service asked patwarden to slow down.",
        ("service",),
    ),
    "patwarden_notifications": (
        "Notifications by channel and phase (started, reminder, resolved, test).",
        ("channel", "phase"),
    ),
}


class Counters:
    """Monotonic counters, thread-safe; zero-valued series appear once touched."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[tuple[str, ...], float]] = {name: {} for name in COUNTERS}

    def add(self, name: str, *labels: str, amount: float = 1.0) -> None:
        with self._lock:
            series = self._values[name]
            series[labels] = series.get(labels, 0.0) + amount

    def set_at_least(self, name: str, *labels: str, value: float) -> None:
        """Raise a counter to *value* (for totals read from elsewhere); never lowers it."""
        with self._lock:
            series = self._values[name]
            series[labels] = max(series.get(labels, 0.0), value)

    def snapshot(self) -> dict[str, dict[tuple[str, ...], float]]:
        with self._lock:
            return {name: dict(series) for name, series in self._values.items()}


def _ts(value: Any) -> float | None:
    return value.timestamp() if value is not None else None


class MetricsCollector(Collector):
    """Yields the service's metrics from the latest snapshot and counters."""

    def __init__(self, snapshot: Callable[[], Snapshot], counters: Counters) -> None:
        self._snapshot = snapshot
        self._counters = counters

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot()
        yield from self._service(snap)
        yield from self._tokens(snap)
        yield from self._identities(snap)
        for name, series in self._counters.snapshot().items():
            help_text, labels = COUNTERS[name]
            family = CounterMetricFamily(name, help_text, labels=list(labels))
            for values, count in sorted(series.items()):
                family.add_metric(list(values), count)
            yield family

    def _service(self, snap: Snapshot) -> Iterator[Metric]:
        leader = GaugeMetricFamily(
            "patwarden_service_leader", "1 when this instance leads its state, 0 on standby."
        )
        leader.add_metric([], 1.0 if snap.role == "leader" else 0.0)
        yield leader
        ready = GaugeMetricFamily("patwarden_service_ready", "1 when /readyz answers 200.")
        ready.add_metric([], 0.0 if snap.problems else 1.0)
        yield ready
        last = GaugeMetricFamily(
            "patwarden_last_check_timestamp_seconds", "When the last check pass finished."
        )
        if snap.last_pass_at is not None:
            last.add_metric([], snap.last_pass_at.timestamp())
        yield last

    def _tokens(self, snap: Snapshot) -> Iterator[Metric]:
        expiry = GaugeMetricFamily(
            "patwarden_token_expiry_timestamp_seconds",
            "When the token's current PAT expires (Unix time).",
            labels=["token", "organization"],
        )
        due = GaugeMetricFamily(
            "patwarden_token_next_rotation_timestamp_seconds",
            "When the token is next due for rotation (Unix time).",
            labels=["token"],
        )
        outcome = GaugeMetricFamily(
            "patwarden_token_last_outcome",
            "1 for the outcome of the token's last run, 0 for the others.",
            labels=["token", "outcome"],
        )
        drift = GaugeMetricFamily(
            "patwarden_token_drift",
            "What the token's last run could not bring to its desired state (0: desired state).",
            labels=["token"],
        )
        problem = GaugeMetricFamily(
            "patwarden_token_problem",
            "1 when the token needs attention (failed, stranded, drift, expiring).",
            labels=["token", "status"],
        )
        for token in snap.tokens:
            if (at := _ts(token.valid_to)) is not None:
                expiry.add_metric([token.name, token.organization], at)
            if (next_at := _ts(token.next_rotation)) is not None:
                due.add_metric([token.name], next_at)
            if token.last_outcome is not None:
                for kind in OutcomeKind:
                    outcome.add_metric([token.name, kind.value], float(kind == token.last_outcome))
            drift.add_metric([token.name], float(len(token.drift)))
            bad = token.status in ("failed", "stranded", "drift", "expiring")
            problem.add_metric([token.name, token.status], float(bad))
        yield from (expiry, due, outcome, drift, problem)

    def _identities(self, snap: Snapshot) -> Iterator[Metric]:
        deadline = GaugeMetricFamily(
            "patwarden_identity_relogin_deadline_timestamp_seconds",
            "When the identity's sign-in runs out unless someone runs patwarden login (Unix time).",
            labels=["identity"],
        )
        ok = GaugeMetricFamily(
            "patwarden_identity_sign_in_ok",
            "1 when the identity got a token at the last sign-in check.",
            labels=["identity", "kind"],
        )
        for identity in snap.identities:
            if (at := _ts(identity.relogin_deadline)) is not None:
                deadline.add_metric([identity.name], at)
            ok.add_metric([identity.name, identity.kind], float(identity.ok))
        yield from (deadline, ok)


def build_registry(snapshot: Callable[[], Snapshot], counters: Counters) -> CollectorRegistry:
    """A registry with the service's collector and the process collector (RSS, CPU, fds)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MetricsCollector(snapshot, counters))
    ProcessCollector(registry=registry)
    return registry


def render_metrics(registry: CollectorRegistry) -> bytes:
    """The exposition text of *registry*."""
    return bytes(generate_latest(registry))
