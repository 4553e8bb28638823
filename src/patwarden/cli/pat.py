"""``patwarden pat list|show|create|extend|revoke``: ad-hoc work on the rotator user's PATs.

Every subcommand signs in as the configured rotator (silently, from its token cache) and calls the
PAT Lifecycle API. ``list`` and ``show`` never print a PAT's value (the API never returns it after
creation). ``create`` prints the new value exactly once, on stdout, and refuses *before creating*
when stdout is a terminal and ``--show-secret`` was not given, so a value is never shown where it
would linger in scrollback, and never lost either.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from patwarden.cli.options import (
    app_context,
    config_option,
    org_option,
    pick_org,
    require_user_identity,
)
from patwarden.cli.output import (
    Column,
    days_left,
    echo_json,
    emit,
    is_terminal,
    output_option,
    render_fields,
    resolve_format,
)
from patwarden.domain.durations import DurationError, format_duration, parse_duration
from patwarden.domain.marker import parse_marker
from patwarden.errors import ConfigError

if TYPE_CHECKING:
    from patwarden.app.context import AppContext
    from patwarden.azdo.client import AzureDevOpsClient
    from patwarden.azdo.models import PatToken

MAX_LIFETIME = timedelta(days=365)  # the longest expiry Azure DevOps accepts (contract §7.2)
STATUS_STYLES = {"active": "green", "expired": "yellow", "revoked": "red"}


class Lifetime(click.ParamType[timedelta, "str | timedelta"]):
    """A duration such as ``30d`` or ``12h``, longer than zero and at most a year."""

    name = "duration"

    def convert(
        self, value: str | timedelta, param: click.Parameter | None, ctx: click.Context | None
    ) -> timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            lifetime = parse_duration(str(value))
        except DurationError as err:
            self.fail(f"{err.message} ({err.hint})", param, ctx)
        if not timedelta() < lifetime <= MAX_LIFETIME:
            self.fail("must be longer than zero and at most 365d", param, ctx)
        return lifetime


@click.group("pat")
def pat() -> None:
    """Ad-hoc work on the rotator's PATs: list, show, create, extend, revoke."""


# --- helpers -----------------------------------------------------------------------------------


def _load(config_path: str | None) -> AppContext:
    """The run's context, its config loaded and its rotator checked to be a user."""
    from patwarden.config.model import APP_IDENTITY_KINDS

    app = app_context(config_path)
    config = app.config
    rotator = config.identities.get(config.rotator)
    if rotator is not None and rotator.kind in APP_IDENTITY_KINDS:
        require_user_identity(config, config.rotator, action="manage PATs as")
    return app


def rotator_client(app: AppContext) -> AzureDevOpsClient:
    """The rotator's Azure DevOps client (the AppContext closes it when the command ends)."""
    return app.azure_devops(app.config.rotator)


def pat_row(token: PatToken, *, org: str, now: datetime, revoked: bool = False) -> dict[str, Any]:
    """What ``list``/``show`` print about a PAT (never its value)."""
    marker = parse_marker(token.display_name)
    if revoked:
        status = "revoked"
    elif token.valid_to <= now:
        status = "expired"
    else:
        status = "active"
    return {
        "organization": org,
        "authorization_id": token.authorization_id,
        "name": token.display_name,
        "scopes": list(token.scope),
        "valid_from": token.valid_from,
        "valid_to": token.valid_to,
        "days_left": days_left(token.valid_to, now=now) if status == "active" else None,
        "status": status,
        "global": token.is_global,
        "managed_token": marker.token_name if marker else None,
    }


def _columns(*, with_org: bool) -> tuple[Column, ...]:
    columns = (
        Column(key="authorization_id", header="id", no_wrap=True),
        Column(key="name", header="name"),
        Column(key="scopes", header="scopes"),
        Column(key="valid_to", header="expires", no_wrap=True),
        Column(key="days_left", header="days left", justify="right"),
        Column(key="status", header="status", styles=STATUS_STYLES),
        Column(key="managed_token", header="managed token"),
    )
    return (Column(key="organization", header="org"), *columns) if with_org else columns


def _show_one(row: dict[str, Any], *, output: str | None) -> None:
    if resolve_format(output) == "json":
        echo_json(row)
        return
    labels = {
        "authorization_id": "id",
        "valid_from": "created",
        "valid_to": "expires",
        "global": "all organizations",
        "managed_token": "managed token",
        "days_left": "days left",
    }
    render_fields([(labels.get(key, key), value) for key, value in row.items()])


def _clamp_note(*, name: str, clamped_from: datetime | None, granted: datetime) -> None:
    if clamped_from is not None:
        click.echo(
            f"Note: Azure DevOps shortened the expiry of {name!r} from "
            f"{clamped_from:%Y-%m-%d %H:%M} UTC to {granted:%Y-%m-%d %H:%M} UTC (the tenant's "
            "maximum PAT lifespan policy); ask for a shorter --lifetime to avoid this.",
            err=True,
        )


def _is_revoked(client: AzureDevOpsClient, *, org: str, authorization_id: str) -> bool:
    from patwarden.azdo.models import DisplayFilter

    return any(
        token.authorization_id == authorization_id
        for token in client.pats.list_tokens(org=org, display_filter=DisplayFilter.REVOKED)
    )


# --- list / show -------------------------------------------------------------------------------


@pat.command("list")
@config_option()
@org_option()
@click.option("--all", "which", flag_value="all", help="Active, expired and revoked PATs.")
@click.option("--revoked", "which", flag_value="revoked", help="Only revoked PATs.")
@click.option("--expired", "which", flag_value="expired", help="Only expired PATs.")
@output_option()
def list_pats(
    config_path: str | None, org: str | None, which: str | None, output: str | None
) -> None:
    """List the rotator's PATs (active unless --all, --revoked or --expired); never values."""
    from patwarden.azdo.models import DisplayFilter

    app = _load(config_path)
    orgs = [org] if org else list(app.config.orgs)
    display_filter = DisplayFilter(which or "active")
    now = app.clock.now()
    rows: list[dict[str, Any]] = []
    client = rotator_client(app)
    for name in orgs:
        revoked_ids: set[str] = set()
        if display_filter is DisplayFilter.ALL:
            revoked_ids = {
                token.authorization_id
                for token in client.pats.list_tokens(org=name, display_filter=DisplayFilter.REVOKED)
            }
        for token in client.pats.list_tokens(org=name, display_filter=display_filter):
            revoked = (
                display_filter is DisplayFilter.REVOKED or token.authorization_id in revoked_ids
            )
            rows.append(pat_row(token, org=name, now=now, revoked=revoked))
    emit(
        rows,
        columns=_columns(with_org=len(orgs) > 1),
        output=output,
        empty=f"No {display_filter.value} PATs in {', '.join(orgs)}.",
    )


@pat.command("show")
@click.argument("authorization_id")
@config_option()
@org_option()
@output_option()
def show(
    authorization_id: str, config_path: str | None, org: str | None, output: str | None
) -> None:
    """Show one PAT by its authorization id (from `pat list`). Never shows its value."""
    app = _load(config_path)
    name = pick_org(app.config, org)
    client = rotator_client(app)
    token = client.pats.get(org=name, authorization_id=authorization_id)
    revoked = _is_revoked(client, org=name, authorization_id=token.authorization_id)
    _show_one(pat_row(token, org=name, now=app.clock.now(), revoked=revoked), output=output)


# --- create / extend / revoke ------------------------------------------------------------------


@pat.command("create")
@click.option("--name", "display_name", required=True, help="The PAT's display name.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    metavar="SCOPE",
    help="A PAT scope such as vso.code; repeat for several.",
)
@click.option("--lifetime", type=Lifetime(), required=True, help="How long it lives, e.g. 30d.")
@config_option()
@org_option()
@click.option(
    "--show-secret", is_flag=True, help="Print the value even though stdout is a terminal."
)
@click.option(
    "--allow-full-access",
    is_flag=True,
    help="Allow the app_token scope (full access). Avoid it: list the scopes you need.",
)
@output_option(
    help_text="json: one object with the value in 'token'. Default: the bare value on stdout, "
    "details on stderr."
)
def create(
    display_name: str,
    scopes: tuple[str, ...],
    lifetime: timedelta,
    config_path: str | None,
    org: str | None,
    show_secret: bool,
    allow_full_access: bool,
    output: str | None,
) -> None:
    """Create an organization-scoped PAT and print its value once, on stdout.

    The value is printed only when stdout is not a terminal (a pipe or a file), or with
    --show-secret. Global (all-organization) PATs are never created.
    """
    app = _load(config_path)
    if is_terminal() and not show_secret:
        raise ConfigError(
            "refusing to print a new PAT's value to this terminal, where it would stay in the "
            "scrollback; nothing was created",
            hint="pipe stdout to where the value belongs (e.g. `patwarden pat create … | "
            "vault-put`), redirect it to a 0600 file, or pass --show-secret",
        )
    if parse_marker(display_name) is not None:
        raise ConfigError(
            f"the display name {display_name!r} has the form patwarden gives the PATs it rotates "
            "(patwarden:<token>:<operation>); reconcile could take it for one of its own and "
            "revoke it; nothing was created",
            hint="choose another --name",
        )
    name = pick_org(app.config, org)
    client = rotator_client(app)
    result = client.pats.create(
        org=name,
        display_name=display_name,
        scopes=scopes,
        valid_to=app.clock.now() + lifetime,
        allow_full_access=allow_full_access,
    )
    token = result.token
    row = pat_row(token, org=name, now=app.clock.now())
    if output == "json":
        echo_json({**row, "token": result.value.reveal(), "clamped_from": result.clamped_from})
    else:
        click.echo(result.value.reveal())
        click.echo(
            f"Created PAT {token.display_name!r} ({token.authorization_id}) in organization "
            f"{name!r}, scopes {' '.join(token.scope)}, valid until "
            f"{token.valid_to:%Y-%m-%d %H:%M} UTC. Its value went to stdout and cannot be "
            "shown again.",
            err=True,
        )
    _clamp_note(name=token.display_name, clamped_from=result.clamped_from, granted=token.valid_to)


@pat.command("extend")
@click.argument("authorization_id")
@click.option(
    "--lifetime",
    type=Lifetime(),
    required=True,
    help="New expiry, counted from now (e.g. 30d). Policy may shorten it.",
)
@config_option()
@org_option()
@output_option()
def extend(
    authorization_id: str,
    lifetime: timedelta,
    config_path: str | None,
    org: str | None,
    output: str | None,
) -> None:
    """Move a still-valid PAT's expiry to now + --lifetime."""
    app = _load(config_path)
    name = pick_org(app.config, org)
    client = rotator_client(app)
    result = client.pats.extend(
        org=name, authorization_id=authorization_id, valid_to=app.clock.now() + lifetime
    )
    token = result.token
    row = pat_row(token, org=name, now=app.clock.now())
    if resolve_format(output) == "json":
        echo_json({**row, "clamped_from": result.clamped_from})
    else:
        _show_one(row, output=output)
        click.echo(
            f"Extended PAT {token.display_name!r} until {token.valid_to:%Y-%m-%d %H:%M} UTC "
            f"({format_duration(lifetime)} from now).",
            err=True,
        )
    _clamp_note(name=token.display_name, clamped_from=result.clamped_from, granted=token.valid_to)


@pat.command("revoke")
@click.argument("authorization_id")
@config_option()
@org_option()
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@output_option()
def revoke(
    authorization_id: str, config_path: str | None, org: str | None, yes: bool, output: str | None
) -> None:
    """Revoke a PAT now; anything still using it stops working."""
    app = _load(config_path)
    name = pick_org(app.config, org)
    client = rotator_client(app)
    token = client.pats.get(org=name, authorization_id=authorization_id)
    marker = parse_marker(token.display_name)
    warning = (
        f" It is a PAT patwarden issued for token {marker.token_name!r}: if a sink still "
        "serves it, its consumers break until the next rotation."
        if marker
        else ""
    )
    question = (
        f"Revoke PAT {token.display_name!r} ({token.authorization_id}) in organization "
        f"{name!r}?{warning}"
    )
    _confirm(question, yes=yes, warning=warning)
    client.pats.revoke(org=name, authorization_id=token.authorization_id)
    row = pat_row(token, org=name, now=app.clock.now(), revoked=True)
    if resolve_format(output) == "json":
        echo_json({**row, "revoked": True})
    else:
        click.echo(
            f"Revoked PAT {token.display_name!r} ({token.authorization_id}) in organization "
            f"{name!r}."
        )


def _confirm(question: str, *, yes: bool, warning: str) -> None:
    if yes:
        if warning:
            click.echo("Warning:" + warning, err=True)
        return
    if not is_terminal(sys.stdin):
        raise ConfigError(
            "refusing to revoke without confirmation: stdin is not a terminal, so nobody can "
            "answer the question; nothing was revoked",
            hint="pass --yes to revoke non-interactively",
        )
    click.confirm(question, abort=True, err=True)
