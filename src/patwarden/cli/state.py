"""`patwarden state migrate | check`: copy the state to another backend, verify a state."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from patwarden.cli.options import app_context, config_option
from patwarden.errors import ConfigError, StateError

if TYPE_CHECKING:
    from patwarden.config.state import StateConfig
    from patwarden.state.dump import StateDump

_STATE_URLS = (
    "sqlite:PATH, postgresql://USER@HOST:PORT/DATABASE, azblob://ACCOUNT/CONTAINER[/BLOB] or "
    "azblob://HOST:PORT/ACCOUNT/CONTAINER[/BLOB] (add ?identity=NAME for the Blob writer)"
)


@click.group("state")
def state() -> None:
    """Check the state, or copy it to another backend (docs/state.md)."""


def _parse(url: str, option: str) -> StateConfig:
    from pydantic import ValidationError

    from patwarden.config.state import StateConfig, mask_url

    try:
        return StateConfig.model_validate(url)
    except ValidationError as exc:
        reason = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise ConfigError(
            f"{option} {mask_url(url)!r} is not a state this patwarden can open: {reason}.",
            hint=f"Give {_STATE_URLS}.",
        ) from None


@state.command("migrate")
@click.option("--from", "source", required=True, metavar="URL", help="The state to copy.")
@click.option("--to", "target", required=True, metavar="URL", help="An empty state to fill.")
@config_option()
def migrate(source: str, target: str, config_path: str | None) -> None:
    """Copy a state (tokens, operations, the journal and the audit log, in order and with their
    times) into an empty PostgreSQL or Azure Blob state, then read it back and compare.

    URL is one of: sqlite:PATH, postgresql://USER@HOST:PORT/DATABASE,
    azblob://ACCOUNT/CONTAINER[/BLOB][?identity=NAME]. The config supplies the identities, the
    PostgreSQL password (`state.password`) and the CA bundle. Stop patwarden (rotate, serve) while
    it runs; afterwards point `state:` at the new URL.
    """
    from patwarden.config.state import mask_url
    from patwarden.state.dump import check_dump

    app = app_context(config_path)
    src, dst = _parse(source, "--from"), _parse(target, "--to")
    if dst.backend == "sqlite":
        raise ConfigError(
            "--to must be a postgresql:// or azblob:// state.",
            hint="patwarden state migrate copies a SQLite state to a shared backend.",
        )
    origin = app.state_backend(src)
    if not origin.exists():
        raise StateError(f"There is no state at {origin.where} to copy.", hint="Check --from.")
    dump = origin.export_dump()
    problems = check_dump(dump)
    if problems:
        raise StateError(
            f"The state {origin.where} is inconsistent ({problems[0]}; {len(problems)} "
            "problems); nothing was copied.",
            hint="Run `patwarden state check` on it and repair or restore it first.",
        )
    destination = app.state_backend(dst)
    destination.import_dump(dump)
    copied = destination.export_dump()
    if _fingerprint(copied) != _fingerprint(dump):
        raise StateError(
            f"The copy at {destination.where} does not read back as {origin.where}.",
            hint="Drop the new state and run the migration again; the original is untouched.",
        )
    click.echo(f"Copied {dump.counts()} from {origin.where} to {destination.where}.")
    click.echo("Verified: the copy reads back identical (journal and audit in order).")
    click.echo(
        f"Next: set `state: {mask_url(target)}` in the config; keep {origin.where} as a backup."
    )


@state.command("check")
@click.option("--state", "url", metavar="URL", help="Check this state instead of the config's.")
@config_option()
def check(url: str | None, config_path: str | None) -> None:
    """Verify a state's integrity: every record decodes, the journal and the audit log are in
    order, every operation is journaled up to its step, tokens name known operations.

    Exits 0 when sound, 6 (state error) on the first damaged record or when problems are found.
    """
    from patwarden.state.dump import check_dump

    app = app_context(config_path)
    backend = app.state_backend(_parse(url, "--state") if url else None)
    if not backend.exists():
        click.echo(f"No state yet at {backend.where} (nothing to check).")
        return
    dump = backend.export_dump()
    problems = check_dump(dump)
    click.echo(f"{backend.where}: {dump.counts()}")
    for problem in problems:
        click.echo(f"problem: {problem}")
    if problems:
        raise StateError(
            f"The state {backend.where} has {len(problems)} problems.",
            hint="Restore it from a backup, or move it aside and run `patwarden adopt`.",
        )
    click.echo("OK: the state is sound.")


def _fingerprint(dump: StateDump) -> object:
    return (
        dump.tokens,
        dump.operations,
        [(e.operation_id, e.token_name, e.step, e.outcome, e.at, e.reason) for e in dump.journal],
        [
            (r.at, r.kind, r.token_name, r.operation_id, r.authorization_id, r.detail)
            for r in dump.audit
        ],
    )
