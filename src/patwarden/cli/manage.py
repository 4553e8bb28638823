"""``patwarden adopt`` and ``patwarden revoke``: take tokens under management, revoke their PATs.

``adopt`` rebuilds each token's state from the markers of its PATs and its sinks' metadata (after
a lost state file, or to take over PATs patwarden created elsewhere). ``revoke`` revokes a managed
token's current (or previous) PAT after a confirmation; with ``--rotate`` it first puts a new PAT
in every sink and then revokes the old one at once (the response to a leak).
"""

from __future__ import annotations

import dataclasses
import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import click

from patwarden.cli.options import config_option
from patwarden.cli.output import Column, echo_json, emit, is_terminal, output_option, resolve_format
from patwarden.cli.rotate import open_runtime, show_report, token_option
from patwarden.errors import ConfigError

if TYPE_CHECKING:
    from patwarden.app.runtime import Runtime
    from patwarden.domain.models import TokenSpec

ADOPT_COLUMNS = (
    Column(key="token", header="token", no_wrap=True),
    Column(key="adopted", header="adopted", styles={"yes": "green", "no": "yellow"}),
    Column(key="current_authorization_id", header="current PAT", no_wrap=True),
    Column(key="detail", header="detail"),
)


@click.command("adopt")
@config_option()
@token_option()
@click.option("--replace", is_flag=True, help="Rebuild tokens the state already knows, too.")
@output_option()
@click.pass_context
def adopt(
    ctx: click.Context,
    config_path: str | None,
    tokens: tuple[str, ...],
    replace: bool,
    output: str | None,
) -> None:
    """Rebuild the state of configured tokens from their PATs' markers and their sinks.

    Use it after the state file was lost, or to take over PATs another patwarden installation
    created. Exits 1 when a token is left without state (for example its PATs could not be
    listed).
    """
    with open_runtime(config_path) as runtime:
        specs = runtime.specs(tokens)
        runtime.check_sign_in(specs)
        results = runtime.adopt(specs, replace_existing=replace)
        with runtime.open_store() as store:
            unmanaged = [spec.name for spec in specs if store.load_token(spec.name) is None]
    rows = [
        {
            "token": r.token_name,
            "adopted": "yes" if r.adopted else "no",
            "current_authorization_id": r.current_authorization_id,
            "detail": "\n".join([r.detail, *r.notes]),
        }
        for r in results
    ]
    emit(
        rows,
        columns=ADOPT_COLUMNS,
        output=output,
        document={"tokens": rows, "unmanaged": unmanaged},
    )
    if unmanaged:
        if resolve_format(output) != "json":
            click.echo(f"Still without state: {', '.join(unmanaged)}.", err=True)
        ctx.exit(1)


@click.command("revoke")
@click.argument("token")
@config_option()
@click.option(
    "--previous", is_flag=True, help="Revoke the previous PAT (still in its grace period)."
)
@click.option(
    "--rotate",
    "rotate_first",
    is_flag=True,
    help="Put a new PAT in every sink first, then revoke the old one at once.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@output_option()
@click.pass_context
def revoke(
    ctx: click.Context,
    token: str,
    config_path: str | None,
    previous: bool,
    rotate_first: bool,
    yes: bool,
    output: str | None,
) -> None:
    """Revoke a managed token's PAT now (after a leak, or to retire it).

    Without --rotate the token's sinks keep serving the revoked PAT, so its consumers fail until
    the next `patwarden rotate` issues a new one. With --rotate the new PAT is distributed and
    verified first, then the old one is revoked without waiting for revoke_after.
    """
    if previous and rotate_first:
        raise click.UsageError("--previous and --rotate do not go together")
    with open_runtime(config_path) as runtime:
        (spec,) = runtime.specs([token])
        if rotate_first:
            _rotate_then_revoke(ctx, runtime, spec, yes=yes, output=output)
            return
        plan = runtime.plan([spec])[0]
        state = plan.state
        target = (state.previous if previous else state.current) if state else None
        pending = list(plan.previous) if previous else []
        if target is None and not pending:
            which = "previous" if previous else "current"
            raise ConfigError(
                f"token {token!r} has no {which} PAT in the state store; nothing was revoked",
                hint="see `patwarden status`; run `patwarden adopt` if the state was lost",
            )
        consequence = (
            " Its consumers should already use the current PAT."
            if previous
            else " Its sinks still serve it: consumers fail until `patwarden rotate` puts a new "
            "one in place (or use --rotate)."
        )
        if target is not None:
            what = f"{target.authorization_id}, expires {target.valid_to:%Y-%m-%d %H:%M} UTC"
            others = [pat for pat in pending if pat != target.authorization_id]
        else:
            what, others = pending[0], pending[1:]
        also = f" and {len(others)} older previous PAT(s) ({', '.join(others)})" if others else ""
        _confirm(
            f"Revoke the {'previous' if previous else 'current'} PAT of token {token!r} "
            f"({what}){also} in {spec.organization}?{consequence}",
            yes=yes,
        )
        revoked = runtime.revoke(spec, previous=previous)
    document: dict[str, Any] = {
        "token": token,
        "revoked_authorization_id": revoked[-1].authorization_id,
        "revoked_authorization_ids": [pat.authorization_id for pat in revoked],
        "which": "previous" if previous else "current",
    }
    if resolve_format(output) == "json":
        echo_json(document)
        return
    for pat in revoked:
        click.echo(f"Revoked PAT {pat.authorization_id} of token {token!r} in {spec.organization}.")
    if not previous:
        click.echo(f"Run `patwarden rotate --token {token}` to give its consumers a new PAT.")


def _rotate_then_revoke(
    ctx: click.Context, runtime: Runtime, spec: TokenSpec, *, yes: bool, output: str | None
) -> None:
    _confirm(
        f"Rotate token {spec.name!r} now and revoke its current PAT as soon as every sink holds "
        "the new one (no grace period)?",
        yes=yes,
    )
    urgent = dataclasses.replace(spec, revoke_after=timedelta(0))
    report = runtime.rotate([urgent], force={spec.name}, concurrency=1)
    show_report(report, output=output, dry_run=False)
    ctx.exit(report.exit_code)


def _confirm(question: str, *, yes: bool) -> None:
    if yes:
        return
    if not is_terminal(sys.stdin):
        raise ConfigError(
            "refusing to revoke without confirmation: stdin is not a terminal, so nobody can "
            "answer the question; nothing was revoked",
            hint="pass --yes to revoke non-interactively",
        )
    click.confirm(question, abort=True, err=True)
