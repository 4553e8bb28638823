"""``patwarden plan`` and ``patwarden rotate``: what is due, and rotating it (a fleet at once).

``rotate`` reconciles and rotates every due token (or those named with ``--token``) with a
bounded pool of workers, shows progress on stderr when stderr is a terminal, prints one line per
token (or ``--output json``) and exits 0 when every token succeeded or nothing was due, 1 when
some failed and 8 when all failed. Config problems exit 2 and a rotator that cannot sign in 3,
before anything runs or when every token failed because its sign-in stopped working mid-run;
with ``--output json`` such a failure still prints a JSON document.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

from patwarden.cli.options import app_context, command_clock, config_option
from patwarden.cli.output import Column, echo_json, emit, is_terminal, output_option, resolve_format

if TYPE_CHECKING:
    from patwarden.app.runtime import Runtime
    from patwarden.rotation.fleet import FleetProgress, FleetReport
    from patwarden.rotation.outcomes import TokenOutcome, TokenPlan

OUTCOME_STYLES = {
    "rotated": "green",
    "not_due": "dim",
    "would_rotate": "cyan",
    "skipped": "yellow",
    "failed": "bold red",
    "rolled_back": "bold red",
}
_Command = TypeVar("_Command", bound=Callable[..., Any])


def token_option(
    help_text: str = "Only this token; repeat for several.",
) -> Callable[[_Command], _Command]:
    """``--token NAME`` (repeatable); the parameter is ``tokens``."""
    return click.option("--token", "tokens", multiple=True, metavar="NAME", help=help_text)


@contextmanager
def open_runtime(config_path: str | None) -> Iterator[Runtime]:
    """Load and validate the config (exit 2 on problems) and build the runtime over the run's
    :class:`~patwarden.app.context.AppContext`, which closes what it built when the command ends."""
    from patwarden.app.runtime import Runtime

    yield Runtime(context=app_context(config_path))


# --- plan --------------------------------------------------------------------------------------

PLAN_COLUMNS = (
    Column(key="token", header="token", no_wrap=True),
    Column(key="organization", header="org"),
    Column(key="due", header="due", styles={"yes": "yellow", "REFUSED": "bold red"}),
    Column(key="due_at", header="due at", no_wrap=True),
    Column(key="current_authorization_id", header="current PAT", no_wrap=True),
    Column(key="valid_to", header="expires", no_wrap=True),
    Column(key="reason", header="why"),
)
PREFLIGHT_COLUMN = Column(key="preflight_text", header="preflight")


@click.command("plan")
@config_option()
@token_option()
@click.option(
    "--preflight",
    is_flag=True,
    help="Also check every sink as rotate does before minting (target exists, writer allowed); "
    "signs in as the writers.",
)
@output_option()
def plan(
    config_path: str | None, tokens: tuple[str, ...], preflight: bool, output: str | None
) -> None:
    """Say which tokens are due for rotation and why; changes nothing, calls nothing.

    Reads only the config and the state store: no sign-in, no network. With --preflight it
    also checks each sink the way `rotate` does before it creates a PAT, and exits 1 when a
    check fails.
    """
    with open_runtime(config_path) as runtime:
        specs = runtime.specs(tokens)
        orgs = {spec.name: spec.organization for spec in specs}
        rows = [plan_row(p, organization=orgs[p.token_name]) for p in runtime.plan(specs)]
        if preflight:
            for row, spec in zip(rows, specs, strict=True):
                row["preflight"] = runtime.preflight(spec)
    failed = [row["token"] for row in rows if any("FAILED" in c for c in row.get("preflight", []))]
    if resolve_format(output) != "json":
        for row in rows:
            row["preflight_text"] = "\n".join(row.get("preflight", []))
            if row["note"]:
                row["reason"] += f" ({row['note']})"
    emit(
        rows,
        columns=PLAN_COLUMNS + ((PREFLIGHT_COLUMN,) if preflight else ()),
        output=output,
        document={"tokens": rows},
        empty="No tokens are configured (add them under tokens: in the config).",
    )
    if resolve_format(output) != "json" and rows:
        due = sum(1 for row in rows if row["due"] == "yes")
        click.echo(f"{due} of {len(rows)} token(s) due now; `patwarden rotate` rotates them.")
    if failed:
        click.echo(
            f"Preflight failed for {', '.join(failed)}: `patwarden rotate` would create no PAT "
            "for it; fix the sink's target or its writer's access.",
            err=True,
        )
        raise SystemExit(1)


def plan_row(item: TokenPlan, *, organization: str) -> dict[str, Any]:
    """One row of ``plan`` (and its JSON): never a secret."""
    decision = item.decision
    current = item.state.current if item.state else None
    reason = item.problem or decision.reason
    if item.unfinished_operations:
        reason += f"; an interrupted rotation resumes first ({item.unfinished_operations[0]})"
    note = None
    if item.state is None and decision.is_due:
        note = (
            "if the state file was lost while Azure DevOps still has PATs marked for this token, "
            "`rotate` refuses it until `patwarden adopt` rebuilt its state (`plan --preflight` "
            "checks)"
        )
    if item.previous:
        reason += f"; previous PAT(s) still valid: {', '.join(item.previous)}"
    if item.stranded:
        reason += f"; stranded PAT(s) the next run revokes: {', '.join(item.stranded)}"
    return {
        "token": item.token_name,
        "organization": organization,
        "due": "REFUSED" if item.problem else ("yes" if decision.is_due else "no"),
        "due_at": decision.due_at,
        "current_authorization_id": current.authorization_id if current else None,
        "valid_to": current.valid_to if current else None,
        "clamped": decision.is_clamped,
        "reason": reason,
        "unfinished_operations": list(item.unfinished_operations),
        "note": note,
        "previous_authorization_ids": list(item.previous),
        "stranded_authorization_ids": list(item.stranded),
    }


# --- rotate ------------------------------------------------------------------------------------

ROTATE_COLUMNS = (
    Column(key="token", header="token", no_wrap=True),
    Column(key="outcome", header="outcome", styles=OUTCOME_STYLES, no_wrap=True),
    Column(key="pat", header="PAT", no_wrap=True),
    Column(key="detail", header="detail"),
)
FINDING_COLUMNS = (
    Column(key="kind", header="reconcile", no_wrap=True),
    Column(key="token", header="token", no_wrap=True),
    Column(key="detail", header="detail"),
)


@click.command("rotate")
@config_option()
@token_option("Only this token (repeat for several); default: every configured token.")
@click.option("--force", is_flag=True, help="Rotate the selected tokens even if not due.")
@click.option("--dry-run", is_flag=True, help="Reconcile and plan read-only: change nothing.")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),  # config.tokens.MAX_CONCURRENCY (not imported: start-up time)
    metavar="N",
    help="At most N tokens rotated at once, 1-256 (default: rotation.concurrency in the config, "
    "else 64). The run starts with one worker and adds more while they wait on Azure.",
)
@output_option()
@click.pass_context
def rotate(
    ctx: click.Context,
    config_path: str | None,
    tokens: tuple[str, ...],
    force: bool,
    dry_run: bool,
    concurrency: int | None,
    output: str | None,
) -> None:
    """Reconcile, then rotate every due token: create, distribute, verify, promote, revoke.

    Each run drives every token to its desired state: one valid current PAT that every sink
    serves, besides it only previous PATs inside their grace period. A current PAT revoked
    outside patwarden, drift in a sink, or a PAT a failed rotation left behind is repaired.

    Exit codes: 0 every token is in its desired state at the end of the run, 1 some tokens are
    not (failed, rolled back, or a problem that could not be repaired), 8 none of those with
    work to do are, 2 invalid config, 3 the rotator cannot sign in (before the run, or every
    token failed because its sign-in stopped working mid-run). See docs/rotation.md.
    """
    with open_runtime(config_path) as runtime:
        specs = runtime.specs(tokens)
        forced = {spec.name for spec in specs} if force else set()
        with progress_display(total=len(specs)) as on_progress:
            report = runtime.rotate(
                specs,
                dry_run=dry_run,
                force=forced,
                concurrency=concurrency,
                on_progress=on_progress,
            )
    show_report(report, output=output, dry_run=dry_run)
    if report.cause is not None and report.exit_code == report.cause.exit_code:
        raise report.cause  # every token failed for it: say why once, exit with its code
    ctx.exit(report.exit_code)


@contextmanager
def progress_display(*, total: int) -> Iterator[Callable[[FleetProgress], None] | None]:
    """A rich progress bar on stderr when stderr is a terminal; otherwise nothing is shown."""
    if not total or not is_terminal(sys.stderr):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar = Progress(
        TextColumn("rotating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=Console(file=sys.stderr),
        transient=True,
    )
    task = bar.add_task("", total=total)

    def advance(progress: FleetProgress) -> None:
        outcome = progress.outcome
        bar.update(
            task, completed=progress.done, description=f"{outcome.token_name}: {outcome.kind}"
        )

    with bar:
        yield advance


def outcome_row(outcome: TokenOutcome) -> dict[str, Any]:
    """One table row of a token's outcome: what happened, which PAT, why, sinks and notes."""
    pat = outcome.new_authorization_id or outcome.current_authorization_id
    lines = [outcome.reason]
    lines += [f"{sink.sink}: {sink.status}" for sink in outcome.sinks]
    lines += [f"note: {note}" for note in outcome.notes]
    lines += [f"NOT CONVERGED: {problem}" for problem in outcome.problems]
    if outcome.replaced_authorization_id:
        lines.append(f"replaced PAT {outcome.replaced_authorization_id}")
    return {
        "token": outcome.token_name,
        "outcome": outcome.kind.value,
        "pat": pat,
        "detail": "\n".join(lines),
    }


def show_report(report: FleetReport, *, output: str | None, dry_run: bool) -> None:
    """Print the per-token outcomes, reconcile findings and a summary (or one JSON document)."""
    if resolve_format(output) == "json":
        echo_json({**report.to_json(), "dry_run": dry_run})
        return
    emit(
        [outcome_row(o) for o in report.outcomes],
        columns=ROTATE_COLUMNS,
        output=output,
        empty="No tokens are configured (add them under tokens: in the config).",
    )
    if report.findings:
        rows = [
            {"kind": f.kind.value, "token": f.token_name, "detail": f.detail}
            for f in report.findings
        ]
        emit(rows, columns=FINDING_COLUMNS, output=output)
    click.echo(summary_line(report, dry_run=dry_run))


def summary_line(report: FleetReport, *, dry_run: bool) -> str:
    """``3 rotated, 1 not_due, 1 failed — 5 tokens in 2.4 s with 4 workers.``"""
    counts = ", ".join(f"{count} {kind}" for kind, count in report.counts().items()) or "nothing"
    what = "Dry run: " if dry_run else ""
    line = (
        f"{what}{counts} — {len(report.outcomes)} token(s) in {report.seconds:.1f} s with "
        f"{report.concurrency} worker(s)."
    )
    if report.failed:
        names = ", ".join(o.token_name for o in report.failed)
        line += f" Needs attention: {names}."
    return line


def now_utc() -> datetime:
    """The run's current time (its AppContext's clock), for ages and deadlines."""
    return command_clock().now()
