"""Terminal rendering with rich: the summary, the worst PATs, a revocation summary, progress.

Every string that comes from Azure DevOps or the directory (display names, owner names,
organizations, errors) is rendered as plain :class:`~rich.text.Text`, never parsed as markup, and
with its control characters made visible (:func:`plain`): a display name can hold ESC sequences.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from patwarden.domain.text import visible_controls
from patwarden.inventory.findings import SEVERITIES
from patwarden.inventory.model import FindingKind, InventoryRow, Severity
from patwarden.inventory.revoke import RevocationOutcome, RevocationReport
from patwarden.inventory.scanner import ScanProgress
from patwarden.inventory.summary import InventorySummary

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "blue",
    Severity.INFO: "dim",
}


def plain(value: object, *, style: str = "") -> Text:
    """External text as a rich ``Text``: no markup, control characters as visible escapes."""
    return Text(visible_controls(str(value)), style=style)


def _severity(row: InventoryRow) -> Text:
    worst = row.max_severity
    if worst is None:
        return Text("none", style="green")
    return Text(worst.label, style=SEVERITY_STYLE[worst])


def _date(row: InventoryRow) -> str:
    return row.pat.valid_to.strftime("%Y-%m-%d") if row.pat.valid_to else ""


def summary_table(summary: InventorySummary) -> Table:
    """Counts by finding kind, each with the worst severity found (its usual one when none was)."""
    table = Table(title="Findings", show_edge=False, title_justify="left")
    table.add_column("finding")
    table.add_column("severity")
    table.add_column("PATs", justify="right")
    severity = {kind: summary.worst_by_kind.get(kind, SEVERITIES[kind]) for kind in FindingKind}
    for kind in sorted(FindingKind, key=lambda k: -severity[k]):
        count = summary.by_kind.get(kind, 0)
        sev = severity[kind]
        table.add_row(kind.value, Text(sev.label, style=SEVERITY_STYLE[sev]), str(count))
    return table


def rows_table(rows: Sequence[InventoryRow], *, title: str) -> Table:
    """The given rows with their findings and fixes."""
    table = Table(title=title, title_justify="left", show_lines=True)
    table.add_column("severity")
    table.add_column("org")
    table.add_column("owner")
    table.add_column("PAT")
    table.add_column("expires")
    table.add_column("findings and fixes", ratio=1)
    for row in rows:
        pat = row.pat
        findings = Text()
        for i, finding in enumerate(row.findings):
            if i:
                findings.append("\n")
            findings.append(finding.kind.value, style=SEVERITY_STYLE[finding.severity])
            findings.append(f" {visible_controls(finding.summary)}\n")
            findings.append(f"  fix: {visible_controls(finding.fix)}", style="dim")
        name = plain(pat.display_name or "(no name)")
        if pat.managed:
            name.append(" [managed]", style="cyan")
        name.append(f"\n{visible_controls(pat.authorization_id)}", style="dim")
        owner = pat.owner.name + ("" if pat.owner.status == "active" else f" ({pat.owner.status})")
        table.add_row(
            _severity(row), plain(pat.organization), plain(owner), name, _date(row), findings
        )
    return table


def print_inventory(
    console: Console,
    *,
    summary: InventorySummary,
    worst: Sequence[InventoryRow],
    problems: Sequence[str],
    requests: int,
    seconds: float,
) -> None:
    """Print the terminal report: totals, counts per finding, the worst PATs, problems."""
    console.print(
        f"Scanned [bold]{summary.total_pats}[/] PATs of [bold]{summary.users_scanned}[/] users "
        f"in {', '.join(summary.organizations)} ({requests} requests, {seconds:.1f} s); "
        f"[bold]{summary.pats_with_findings}[/] have findings"
        + (
            f", {summary.managed_with_findings} managed by patwarden."
            if summary.pats_with_findings
            else "."
        )
    )
    console.print(summary_table(summary))
    if worst:
        shown = f"{len(worst)} worst of {summary.pats_with_findings}"
        console.print(rows_table(worst, title=f"PATs with findings ({shown})"))
        if len(worst) < summary.pats_with_findings:
            console.print("[dim]More in --output json|csv|html FILE; --top N shows more here.[/]")
    for problem in problems:
        console.print(Text.assemble(("problem:", "red"), " ", plain(problem)))


def _outcome_rows(outcomes: Sequence[RevocationOutcome]) -> list[InventoryRow]:
    return [o.row for o in outcomes]


def print_revocation(console: Console, report: RevocationReport) -> None:
    """Print what was (or, in a dry run, would be) revoked and what failed."""
    if report.dry_run:
        console.print(
            f"[bold]Dry run:[/] {report.selected} PAT(s) would be revoked. Nothing was changed; "
            "rerun with --yes to revoke them."
        )
        if report.revoked_examples:
            console.print(rows_table(_outcome_rows(report.revoked_examples), title="Would revoke"))
        return
    console.print(
        f"Revoked [bold]{report.revoked}[/] of {report.selected} selected PAT(s); "
        f"[{'red' if report.failed else 'green'}]{report.failed} failed[/]. "
        "Each revocation is in the audit log; it can take up to an hour to take effect."
    )
    if report.revoked_examples:
        console.print(rows_table(_outcome_rows(report.revoked_examples), title="Revoked"))
    if report.failures:
        table = Table(title="Failed", title_justify="left")
        table.add_column("org")
        table.add_column("owner")
        table.add_column("PAT")
        table.add_column("error", ratio=1)
        for failure in report.failures:
            pat = failure.row.pat
            table.add_row(
                plain(pat.organization),
                plain(pat.owner.name),
                plain(pat.authorization_id),
                plain(failure.error or ""),
            )
        console.print(table)


@contextmanager
def scan_progress(console: Console, *, enabled: bool) -> Iterator[ProgressCallback]:
    """Yield a progress callback drawing a live bar on *console* (a no-op when not enabled)."""
    if not enabled:
        yield ProgressCallback(None)
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("users · {task.fields[pats]} PATs"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with progress:
        yield ProgressCallback(progress)


class ProgressCallback:
    """Turns :class:`ScanProgress` events into rich progress updates (users scanned/listed)."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._task = (
            progress.add_task("Scanning", total=None, pats=0) if progress is not None else None
        )

    def __call__(self, event: ScanProgress) -> None:
        """Update the bar (total known once the user listing is done)."""
        if self._progress is None or self._task is None:
            return
        self._progress.update(
            self._task,
            description=f"Scanning {event.organization}",
            completed=event.users_scanned,
            total=max(event.users_listed, event.users_scanned),
            pats=event.pats,
        )
