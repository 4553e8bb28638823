"""``patwarden doctor``: check everything the next rotation needs; exit 3 if it would fail."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from patwarden.cli.options import app_context, config_option
from patwarden.cli.output import Column, emit, output_option, resolve_format
from patwarden.errors import ConfigError

if TYPE_CHECKING:
    from patwarden.app.context import AppContext
    from patwarden.doctor.report import DoctorReport

STATUS_STYLES = {"✓": "green", "!": "yellow", "✗": "bold red", "-": "dim"}
COLUMNS = (
    Column(key="symbol", header="", styles=STATUS_STYLES, no_wrap=True),
    Column(key="check", header="check"),
    Column(key="detail", header="detail"),
    Column(key="fix", header="fix"),
)


@click.command("doctor")
@config_option()
@output_option()
@click.option("--strict", is_flag=True, help="Exit 1 when there are warnings but no failures.")
@click.option(
    "--probe",
    is_flag=True,
    help="Instead of the checks, probe the calls patwarden relies on and compare each answer's "
    "status, envelope, fields and headers with what patwarden assumes (read-only).",
)
@click.option(
    "--allow-write",
    is_flag=True,
    help="With --probe: also create and revoke one PAT (vso.profile, valid 1 hour).",
)
@click.option(
    "--record",
    "record",
    type=click.Path(dir_okay=False, writable=True),
    help="With --probe: write the answers' sanitised shapes (no values, ids or names) to FILE.",
)
@click.pass_context
def doctor(
    ctx: click.Context,
    config_path: str | None,
    output: str | None,
    strict: bool,
    probe: bool,
    allow_write: bool,
    record: str | None,
) -> None:
    """Check identities, PAT API access, sinks, policy clamps and the clock.

    Each line says what was found and, when something is wrong, the fix. Exit codes: 0 nothing
    would fail (warnings allowed), 3 something would make the next rotation fail, 1 warnings
    only with --strict.

    With --probe (for the first run against a real tenant): exit 0 every answer matched, 1 some
    differ from what patwarden assumes, 3 a probe could not run.
    """
    from patwarden.doctor.checks import run_doctor
    from patwarden.doctor.report import config_failure_report

    if (allow_write or record) and not probe:
        raise click.UsageError("--allow-write and --record go with --probe.")
    app = app_context(config_path)
    if probe:
        ctx.exit(probe_command(app, output=output, allow_write=allow_write, record=record))
    try:
        app.config  # noqa: B018  # load it here: a config problem is a report, not an error
    except ConfigError as err:
        report = config_failure_report(err)
    else:
        report = run_doctor(app)
    show(report, output=output)
    ctx.exit(report.exit_code(strict=strict))


def show(report: DoctorReport, *, output: str | None) -> None:
    """Print *report* as a table with a summary line, or as one JSON document."""
    rows = [
        {"symbol": c.symbol, "check": c.check, "detail": c.detail, "fix": c.fix}
        for c in report.checks
    ]
    emit(rows, columns=COLUMNS, output=output, document=report.to_json())
    if resolve_format(output) != "json":
        click.echo(report.summary())


PROBE_STYLES = {"match": "green", "differs": "yellow", "failed": "bold red", "skipped": "dim"}
PROBE_COLUMNS = (
    Column(key="probe", header="probe", no_wrap=True),
    Column(key="request", header="request"),
    Column(key="result", header="result", styles=PROBE_STYLES, no_wrap=True),
    Column(key="detail", header="detail"),
)


def probe_command(
    app: AppContext, *, output: str | None, allow_write: bool, record: str | None
) -> int:
    """Run ``doctor --probe``, print its table or JSON, write the record; return the exit code.

    Raises:
        ConfigError: the configuration cannot be loaded (the CLI's handler prints it).
    """
    import json
    from pathlib import Path

    from patwarden.doctor.probe import run_probe

    report = run_probe(
        config=app.config, credentials=app.credentials, clock=app.clock, allow_write=allow_write
    )
    rows = [
        {"probe": r.probe, "request": r.request, "result": r.verdict.value, "detail": r.detail}
        for r in report.results
    ]
    emit(rows, columns=PROBE_COLUMNS, output=output, document=report.to_json())
    if record:
        try:
            Path(record).write_text(json.dumps(report.recording(), indent=2) + "\n", "utf-8")
        except OSError as err:
            raise click.FileError(record, hint=err.strerror) from None
    if resolve_format(output) != "json":
        click.echo(report.summary() + (f" Shapes written to {record}." if record else ""))
    return report.exit_code
