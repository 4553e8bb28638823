"""`patwarden inventory`: every PAT of every user in the organizations, with findings; bulk revoke.

Heavy modules (httpx, azure, rich, pydantic) are imported inside the commands so that
`patwarden --help` stays fast. The work itself lives in :mod:`patwarden.inventory`.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import click

from patwarden.cli.options import LazyPath, app_context, config_option, inherit_root

if TYPE_CHECKING:
    from pathlib import Path

FORMATS = ("table", "json", "csv", "html")
SEVERITIES = ("info", "low", "medium", "high", "critical")
FINDINGS = (
    "global",
    "full-access",
    "expiring",
    "long-lived",
    "broad-scope",
    "owner-disabled",
    "owner-removed",
    "expired",
)


def _common_options(func: Any) -> Any:
    options = [
        config_option(),
        click.option(
            "--org",
            "orgs",
            multiple=True,
            metavar="ORG",
            help="Organization to scan (repeatable; default: the config's organizations).",
        ),
        click.option(
            "--identity",
            metavar="NAME",
            help="Identity to scan as (default: `auditor:` from the config).",
        ),
        click.option(
            "--expiring-within",
            type=click.IntRange(1, 3650),
            default=14,
            show_default=True,
            metavar="DAYS",
            help="Flag PATs that expire within this many days.",
        ),
        click.option(
            "--max-lifetime",
            type=click.IntRange(1, 3650),
            default=90,
            show_default=True,
            metavar="DAYS",
            help="Flag PATs valid for longer than this many days.",
        ),
        click.option(
            "--workers",
            type=click.IntRange(1, 64),
            default=8,
            show_default=True,
            help="Users whose PATs are listed at the same time (one rate limit is shared).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


class InventoryGroup(click.Group):
    """Accepts ``--output html FILE`` (or ``-o``): the word after ``html`` (or ``--output=html``) is
    the file.

    The argument list is rewritten to ``--output html --output-file FILE`` before click parses it,
    unless that word is an option or a subcommand.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        rewritten: list[str] = []
        i = 0
        while i < len(args):
            arg = args[i]
            rewritten.append(arg)
            value = None
            if arg in ("--output", "-o") and i + 1 < len(args):
                value = args[i + 1]
                rewritten.append(value)
                i += 1
            elif arg.startswith("--output="):
                value = arg.split("=", 1)[1]
            following = args[i + 1] if i + 1 < len(args) else None
            if (
                value in FORMATS
                and value != "table"
                and following is not None
                and not following.startswith("-")
                and following not in self.commands
            ):
                rewritten += ["--output-file", following]
                i += 1
            i += 1
        return super().parse_args(ctx, rewritten)


def _settings(
    *,
    config_path: str | None,
    orgs: tuple[str, ...],
    identity: str | None,
    expiring_within: int,
    max_lifetime: int,
    workers: int,
    only_findings: bool = False,
    top: int = 50,
) -> tuple[Any, str, Any]:
    """Load the config and return (run context, identity name, ScanSettings)."""
    from patwarden.inventory.findings import FindingRules
    from patwarden.inventory.run import ScanSettings
    from patwarden.inventory.wiring import auditor_name, organizations, rotate_before

    app = app_context(config_path)
    config = app.config
    name = auditor_name(config, identity)
    rules = FindingRules(
        expiring_within=timedelta(days=expiring_within),
        max_lifetime=timedelta(days=max_lifetime),
        rotate_before=rotate_before(config),
    )
    settings = ScanSettings(
        organizations=organizations(config, orgs),
        rules=rules,
        workers=workers,
        only_findings=only_findings,
        top=top,
    )
    return app, name, settings


@click.group("inventory", cls=InventoryGroup, invoke_without_command=True)
@_common_options
@click.option(
    "--output",
    "-o",
    "output",
    type=click.Choice(FORMATS),
    default=None,
    callback=inherit_root,
    help="table (the default), json, csv, or html FILE (a self-contained page).",
)
@click.option(
    "--output-file",
    type=LazyPath(dir_okay=False),
    metavar="FILE",
    help="Write json/csv/html here instead of stdout (`--output html FILE` sets it too).",
)
@click.option("--only-findings", is_flag=True, help="Export only PATs with findings.")
@click.option(
    "--fail-on",
    type=click.Choice(SEVERITIES),
    metavar="SEVERITY",
    help="Exit 10 when a finding of this severity or worse exists (for pipelines).",
)
@click.option(
    "--top",
    type=click.IntRange(0, 10_000),
    default=50,
    show_default=True,
    help="Rows in the terminal table (worst first).",
)
@click.pass_context
def inventory(
    ctx: click.Context,
    config_path: str | None,
    orgs: tuple[str, ...],
    identity: str | None,
    expiring_within: int,
    max_lifetime: int,
    workers: int,
    output: str | None,
    output_file: Path | None,
    only_findings: bool,
    fail_on: str | None,
    top: int,
) -> None:
    """List every PAT of every user in the organizations, with findings and fixes.

    Runs as the `auditor` identity, which must be a Project Collection Administrator. Findings:
    global, full-access, expiring, long-lived, broad-scope, owner-disabled, owner-removed,
    expired. Exit codes: 0 done; 10 --fail-on tripped; 2 config; 3 access; 4 Azure DevOps or an
    incomplete scan. See docs/inventory.md.
    """
    if ctx.invoked_subcommand is not None:
        return
    from rich.console import Console

    from patwarden.inventory.model import Severity
    from patwarden.inventory.outputs import OutputFormat
    from patwarden.inventory.run import check_result, run_inventory
    from patwarden.inventory.table import print_inventory, scan_progress
    from patwarden.inventory.wiring import auditor_client, managed_ids

    app, name, settings = _settings(
        config_path=config_path,
        orgs=orgs,
        identity=identity,
        expiring_within=expiring_within,
        max_lifetime=max_lifetime,
        workers=workers,
        only_findings=only_findings,
        top=top,
    )
    fmt = OutputFormat(output or "table")
    gate = Severity.parse(fail_on) if fail_on else None
    err = Console(stderr=True)
    with (
        auditor_client(
            context=app,
            identity=name,
            managed=managed_ids(app),
        ) as auditor,
        scan_progress(err, enabled=sys.stderr.isatty()) as progress,
    ):
        result = run_inventory(
            source=auditor.source,
            settings=settings,
            now=app.clock.now(),
            output=fmt,
            path=output_file,
            on_progress=progress,
        )
        requests = auditor.requests
    if fmt is OutputFormat.TABLE:
        print_inventory(
            Console(),
            summary=result.summary,
            worst=result.worst_rows,
            problems=result.problems,
            requests=requests,
            seconds=result.seconds,
        )
    else:
        where = f" to {output_file}" if output_file else ""
        click.echo(
            f"Wrote {result.summary.total_pats} PAT(s), {result.summary.pats_with_findings} with "
            f"findings, as {fmt.value}{where} ({requests} requests, {result.seconds:.1f} s).",
            err=True,
        )
        for problem in result.problems:
            click.echo(f"problem: {problem}", err=True)
    check_result(result, fail_on=gate)


@inventory.command("revoke")
@_common_options
@click.option(
    "--finding",
    "findings",
    multiple=True,
    required=True,
    type=click.Choice(FINDINGS),
    help="Revoke PATs with this finding (repeatable; any of them matches).",
)
@click.option(
    "--user",
    "users",
    multiple=True,
    metavar="USER",
    help="Only PATs of this owner: principal name or Graph descriptor (repeatable).",
)
@click.option(
    "--include-managed",
    is_flag=True,
    help="Also revoke PATs patwarden manages for a configured token (its sinks keep serving "
    "the revoked PAT until the next `patwarden rotate` replaces it).",
)
@click.option("--dry-run", is_flag=True, help="Only list what would be revoked.")
@click.option("--yes", is_flag=True, help="Revoke for real; without it this is a dry run.")
def revoke(
    config_path: str | None,
    orgs: tuple[str, ...],
    identity: str | None,
    expiring_within: int,
    max_lifetime: int,
    workers: int,
    findings: tuple[str, ...],
    users: tuple[str, ...],
    include_managed: bool,
    dry_run: bool,
    yes: bool,
) -> None:
    """Revoke, through Token Admin, every PAT with one of the given findings.

    Without --yes this is a dry run (on a terminal or not); --dry-run always is. PATs patwarden
    manages for a configured token are left alone unless --include-managed. Every revocation
    (and every failure) is written to the audit log, naming the managed token. Exit 4 if any
    revocation failed.
    """
    from rich.console import Console

    from patwarden.inventory.model import FindingKind
    from patwarden.inventory.revoke import RevocationSelection
    from patwarden.inventory.run import check_revocation, run_revocation
    from patwarden.inventory.table import print_revocation, scan_progress
    from patwarden.inventory.wiring import audit_log, auditor_client, managed_ids

    # `patwarden inventory --config C --org O revoke …` puts those options on the group.
    parent = click.get_current_context().parent
    group = parent.params if parent is not None else {}
    app, name, settings = _settings(
        config_path=config_path or group.get("config_path"),
        orgs=orgs or tuple(group.get("orgs") or ()),
        identity=identity or group.get("identity"),
        expiring_within=expiring_within,
        max_lifetime=max_lifetime,
        workers=workers,
    )
    selection = RevocationSelection(
        kinds=frozenset(FindingKind.parse(f) for f in findings),
        users=frozenset(users),
        include_managed=include_managed,
    )
    simulate = dry_run or not yes
    err = Console(stderr=True)
    clock = app.clock
    with (
        auditor_client(context=app, identity=name, managed=managed_ids(app)) as auditor,
        scan_progress(err, enabled=sys.stderr.isatty()) as progress,
    ):
        if simulate:
            _, report = run_revocation(
                source=auditor.source,
                revoker=auditor.source,
                settings=settings,
                selection=selection,
                now=clock.now(),
                dry_run=True,
                audit=None,
                clock=clock.now,
                on_progress=progress,
            )
        else:
            with audit_log(app) as audit:
                _, report = run_revocation(
                    source=auditor.source,
                    revoker=auditor.source,
                    settings=settings,
                    selection=selection,
                    now=clock.now(),
                    dry_run=False,
                    audit=audit,
                    clock=clock.now,
                    on_progress=progress,
                )
    print_revocation(Console(), report)
    if report.skipped_managed:
        click.echo(
            f"Left alone {report.skipped_managed} PAT(s) patwarden manages for a configured "
            "token; pass --include-managed to revoke them too (`patwarden rotate` then issues "
            "new ones).",
            err=True,
        )
    if simulate and not dry_run:
        click.echo("Dry run: nothing was revoked; pass --yes to revoke.", err=True)
    check_revocation(report)
