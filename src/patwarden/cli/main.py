"""Entry point: a lazy click group so `patwarden --help` starts fast.

Command modules are imported only when their command runs (or when help lists them), and they in
turn import the Azure SDKs inside their functions, never at module level.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from patwarden import __version__
from patwarden.errors import PatwardenError

# name -> "module:attribute". One line per command group; keep sorted.
_COMMANDS: dict[str, str] = {
    "adopt": "patwarden.cli.manage:adopt",
    "audit": "patwarden.cli.status:audit",
    "config": "patwarden.cli.config:config",
    "demo": "patwarden_emulator.commands:demo",
    "doctor": "patwarden.cli.doctor:doctor",
    "emulator": "patwarden_emulator.commands:emulator",
    "inventory": "patwarden.cli.inventory:inventory",
    "login": "patwarden.cli.login:login",
    "logout": "patwarden.cli.login:logout",
    "pat": "patwarden.cli.pat:pat",
    "plan": "patwarden.cli.rotate:plan",
    "revoke": "patwarden.cli.manage:revoke",
    "rotate": "patwarden.cli.rotate:rotate",
    "status": "patwarden.cli.status:status",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        command = getattr(importlib.import_module(module_name), attr)
        if not isinstance(command, click.Command):  # pragma: no cover - programming error
            raise TypeError(f"{target} is not a click command")
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except PatwardenError as err:
            if ctx.find_root().params.get("debug"):
                raise
            click.echo(f"Error: {err}", err=True)
            sys.exit(err.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        except Exception as err:
            if ctx.find_root().params.get("debug"):
                raise
            # Only the class name: an unexpected exception's text may quote a response body.
            click.echo(
                f"Error: unexpected {type(err).__name__}. This is a bug in patwarden; rerun with "
                "--debug for the traceback and report it (check it for secrets before sharing).",
                err=True,
            )
            sys.exit(70)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="patwarden")
@click.option("--debug", is_flag=True, help="Show debug logs and full tracebacks.")
def cli(debug: bool) -> None:
    """Rotate Azure DevOps personal access tokens unattended, in tenants that enforce MFA."""
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="patwarden")
