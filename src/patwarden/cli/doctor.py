"""``patwarden doctor``: check everything the next rotation needs; exit 3 if it would fail."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from patwarden.cli.options import app_context, config_option
from patwarden.cli.output import Column, emit, output_option, resolve_format
from patwarden.errors import ConfigError

if TYPE_CHECKING:
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
@click.pass_context
def doctor(ctx: click.Context, config_path: str | None, output: str | None, strict: bool) -> None:
    """Check identities, PAT API access, sinks, policy clamps and the clock.

    Each line says what was found and, when something is wrong, the fix. Exit codes: 0 nothing
    would fail (warnings allowed), 3 something would make the next rotation fail, 1 warnings
    only with --strict.
    """
    from patwarden.doctor.checks import run_doctor
    from patwarden.doctor.report import config_failure_report

    app = app_context(config_path)
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
