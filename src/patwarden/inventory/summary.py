"""Running totals over a stream of inventory rows, in constant memory.

:class:`SummaryBuilder` is fed one row at a time while the scan streams; it keeps counts, the
weekly expiry histogram for the next 90 days and the *N* worst rows for the terminal table, and
nothing else, so memory does not grow with the number of PATs.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from patwarden.inventory.model import FindingKind, InventoryRow, PatStatus, Severity

EXPIRY_HORIZON = timedelta(days=90)
WEEK = timedelta(days=7)
# Weeks starting at now, now+7d, … whose start lies inside the horizon: 13 (the last one is the
# 6 days from day 84 to day 90).
EXPIRY_WEEKS = -(-EXPIRY_HORIZON.days // WEEK.days)


@dataclass(frozen=True, kw_only=True)
class WeekBucket:
    """How many active PATs expire in ``[start, end)``."""

    start: datetime
    end: datetime
    count: int


@dataclass(frozen=True, kw_only=True)
class InventorySummary:
    """The totals of a finished (or interrupted) scan."""

    generated_at: datetime
    organizations: tuple[str, ...]
    total_pats: int
    users_scanned: int
    pats_with_findings: int
    by_status: dict[PatStatus, int]
    by_kind: dict[FindingKind, int]
    by_severity: dict[Severity, int]
    worst_by_kind: dict[FindingKind, Severity]  # only the kinds found (a global PAT's severity
    # depends on the date: critical before the 2026-12-01 retirement, low after)
    managed_with_findings: int
    expiry_weeks: tuple[WeekBucket, ...]

    @property
    def worst(self) -> Severity | None:
        """The worst severity found, or None when nothing was found."""
        present = [s for s, n in self.by_severity.items() if n]
        return max(present, default=None)

    def count_at_least(self, severity: Severity) -> int:
        """Number of findings of *severity* or worse."""
        return sum(n for s, n in self.by_severity.items() if s >= severity)


def _row_order(row: InventoryRow) -> tuple[int, float]:
    """Larger is worse: severity first, then the earlier expiry."""
    worst = row.max_severity
    expires = row.pat.valid_to.timestamp() if row.pat.valid_to else float("inf")
    return (-1 if worst is None else int(worst), -expires)


class SummaryBuilder:
    """Accumulate an :class:`InventorySummary` (and the *top* worst rows) row by row."""

    def __init__(self, *, now: datetime, organizations: tuple[str, ...], top: int = 50) -> None:
        self._now = now
        self._organizations = organizations
        self._top = top
        self._heap: list[tuple[tuple[int, float], int, InventoryRow]] = []
        self._tiebreak = itertools.count()
        self._total = 0
        self._with_findings = 0
        self._managed_with_findings = 0
        self._status: Counter[PatStatus] = Counter()
        self._kind: Counter[FindingKind] = Counter()
        self._severity: Counter[Severity] = Counter()
        self._worst: dict[FindingKind, Severity] = {}
        self._weeks = [0] * EXPIRY_WEEKS

    def add(self, row: InventoryRow) -> None:
        """Count *row* and keep it if it is among the *top* worst rows with findings."""
        self._total += 1
        self._status[row.status] += 1
        for finding in row.findings:
            self._kind[finding.kind] += 1
            self._severity[finding.severity] += 1
            known = self._worst.get(finding.kind)
            if known is None or finding.severity > known:
                self._worst[finding.kind] = finding.severity
        if row.findings:
            self._with_findings += 1
            self._managed_with_findings += row.pat.managed
            self._keep(row)
        self._count_expiry(row)

    def _keep(self, row: InventoryRow) -> None:
        if self._top <= 0:
            return
        entry = (_row_order(row), next(self._tiebreak), row)
        if len(self._heap) < self._top:
            heapq.heappush(self._heap, entry)
        elif entry[0] > self._heap[0][0]:
            heapq.heapreplace(self._heap, entry)

    def _count_expiry(self, row: InventoryRow) -> None:
        valid_to = row.pat.valid_to
        if row.status is not PatStatus.ACTIVE or valid_to is None:
            return
        left = valid_to - self._now
        if timedelta(0) <= left < EXPIRY_HORIZON:
            self._weeks[left // WEEK] += 1

    def worst_rows(self) -> list[InventoryRow]:
        """The kept rows, worst first."""
        return [row for _, _, row in sorted(self._heap, key=lambda e: (e[0], -e[1]), reverse=True)]

    def summary(self, *, users_scanned: int = 0) -> InventorySummary:
        """The totals so far; *users_scanned* comes from the scanner (owners without PATs count)."""
        weeks = tuple(
            WeekBucket(
                start=self._now + i * WEEK,
                end=min(self._now + (i + 1) * WEEK, self._now + EXPIRY_HORIZON),
                count=count,
            )
            for i, count in enumerate(self._weeks)
        )
        return InventorySummary(
            generated_at=self._now,
            organizations=self._organizations,
            total_pats=self._total,
            users_scanned=users_scanned,
            pats_with_findings=self._with_findings,
            by_status={s: self._status[s] for s in PatStatus},
            by_kind={k: self._kind[k] for k in FindingKind},
            by_severity={s: self._severity[s] for s in Severity},
            worst_by_kind=dict(self._worst),
            managed_with_findings=self._managed_with_findings,
            expiry_weeks=weeks,
        )
