"""Run an inventory: scan, stream rows to an output, summarise, revoke, gate.

This is the layer the CLI calls; it knows nothing about click or terminals. The pieces it joins
are pure (findings, summary, renderers) or behind small protocols (the source, the revoker,
the audit log), so each piece is tested on its own and this module stays thin.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from patwarden.domain.models import AuditRecord
from patwarden.errors import AzureDevOpsError, PatwardenError
from patwarden.inventory.findings import FindingRules
from patwarden.inventory.model import InventoryRow, Severity
from patwarden.inventory.outputs import OutputFormat, open_output
from patwarden.inventory.revoke import BulkRevoker, RevocationReport, RevocationSelection, Revoker
from patwarden.inventory.scanner import InventorySource, Scanner, ScanProgress
from patwarden.inventory.summary import InventorySummary, SummaryBuilder

# Exit code of `inventory --fail-on SEVERITY` when a finding at or above SEVERITY was found.
FINDINGS_EXIT_CODE = 10


class FindingsAboveThreshold(PatwardenError):
    """``--fail-on`` tripped: findings at or above the given severity exist (exit 10)."""

    exit_code = FINDINGS_EXIT_CODE


class InventoryIncomplete(AzureDevOpsError):
    """Some users' PATs could not be listed; the report says which (exit 4)."""


class RevocationIncomplete(AzureDevOpsError):
    """Some selected PATs could not be revoked; the summary lists them (exit 4)."""


@dataclass(frozen=True, kw_only=True)
class ScanSettings:
    """What to scan and how."""

    organizations: tuple[str, ...]
    rules: FindingRules = field(default_factory=FindingRules)
    workers: int = 8
    only_findings: bool = False
    top: int = 50


@dataclass(frozen=True, kw_only=True)
class ScanResult:
    """What a finished scan found (rows themselves went to the output)."""

    summary: InventorySummary
    worst_rows: list[InventoryRow]
    problems: list[str]
    problem_count: int
    seconds: float


def _scan(
    *,
    source: InventorySource,
    settings: ScanSettings,
    now: datetime,
    on_row: Callable[[InventoryRow], None],
    on_progress: Callable[[ScanProgress], None] | None,
) -> ScanResult:
    started = time.monotonic()
    scanner = Scanner(
        source=source,
        organizations=settings.organizations,
        now=now,
        rules=settings.rules,
        workers=settings.workers,
        on_progress=on_progress,
    )
    builder = SummaryBuilder(now=now, organizations=settings.organizations, top=settings.top)
    for row in scanner.rows():
        builder.add(row)
        on_row(row)
    problems = list(scanner.problems)
    if scanner.problem_count > len(problems):
        problems.append(f"… and {scanner.problem_count - len(problems)} more problem(s).")
    return ScanResult(
        summary=builder.summary(users_scanned=scanner.users_scanned),
        worst_rows=builder.worst_rows(),
        problems=problems,
        problem_count=scanner.problem_count,
        seconds=time.monotonic() - started,
    )


def run_inventory(
    *,
    source: InventorySource,
    settings: ScanSettings,
    now: datetime,
    output: OutputFormat,
    path: Path | None,
    on_progress: Callable[[ScanProgress], None] | None = None,
) -> ScanResult:
    """Scan and write every row (or only rows with findings) to *output*.

    Raises:
        AuthError: the identity may not list users or PATs.
        ConfigError: a bad output choice or path.
    """
    with open_output(
        output,
        path=path,
        now=now,
        organizations=settings.organizations,
        rules=settings.rules,
    ) as out:

        def on_row(row: InventoryRow) -> None:
            if row.findings or not settings.only_findings:
                out.write(row)

        result = _scan(
            source=source, settings=settings, now=now, on_row=on_row, on_progress=on_progress
        )
        out.finish(result.summary, result.problems)
    return result


def check_result(result: ScanResult, *, fail_on: Severity | None) -> None:
    """Raise the error a pipeline should see for *result*, if any.

    Raises:
        InventoryIncomplete: some users could not be scanned (exit 4).
        FindingsAboveThreshold: ``fail_on`` is set and was reached (exit 10).
    """
    if result.problem_count:
        raise InventoryIncomplete(
            f"The inventory is incomplete: the PATs of {result.problem_count} user(s) could not "
            "be listed (see the problems in the report).",
            hint="Run it again; if the same users fail, check them in Organization settings.",
        )
    if fail_on is not None:
        count = result.summary.count_at_least(fail_on)
        if count:
            raise FindingsAboveThreshold(
                f"{count} finding(s) of severity {fail_on.label} or worse "
                f"(--fail-on {fail_on.label}).",
                hint="Fix them (each finding carries its fix) or raise the threshold.",
            )


def run_revocation(
    *,
    source: InventorySource,
    revoker: Revoker,
    settings: ScanSettings,
    selection: RevocationSelection,
    now: datetime,
    dry_run: bool,
    audit: Callable[[AuditRecord], None] | None,
    clock: Callable[[], datetime],
    on_progress: Callable[[ScanProgress], None] | None = None,
) -> tuple[ScanResult, RevocationReport]:
    """Scan, and revoke (or with *dry_run* only list) every row *selection* matches.

    Raises:
        AuthError: the identity may not list or revoke.
    """
    bulk = BulkRevoker(revoker=revoker, audit=audit, now=clock, dry_run=dry_run)

    def on_row(row: InventoryRow) -> None:
        if selection.matches(row):
            bulk.add(row)
        elif selection.skips(row):
            bulk.report.skipped_managed += 1

    result = _scan(
        source=source, settings=settings, now=now, on_row=on_row, on_progress=on_progress
    )
    return result, bulk.finish()


def check_revocation(report: RevocationReport) -> None:
    """Raise when some selected PATs could not be revoked.

    Raises:
        RevocationIncomplete: at least one revocation failed (exit 4).
    """
    if report.failed:
        raise RevocationIncomplete(
            f"{report.failed} of {report.selected} selected PAT(s) could not be revoked "
            "(listed above; each failure is in the audit log).",
            hint="Run the same command again to retry; revoking is idempotent.",
        )


def format_problems(problems: Sequence[str]) -> str:
    """One line per problem, for a terminal."""
    return "\n".join(f"  - {p}" for p in problems)
