"""Entry point: a lazy click group so `patwarden --help` starts fast.

Command modules are imported only when their command runs (or when help lists them), and they in
turn import the Azure SDKs inside their functions, never at module level.

The root group creates the run's :class:`~patwarden.app.context.AppContext` (with the clock
given to :func:`main`) as the click context object and closes it when the command ends. The
shared options ``--config`` and ``--output/-o`` work before the subcommand as well as after it.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Any

import click

from patwarden import __version__
from patwarden.app.context import AppContext
from patwarden.cli.options import CONFIG_OPTION_HELP, OUTPUT_META
from patwarden.cli.output import (
    FORMATS,
    JSON,
    JSON_PRINTED,
    echo_json,
    error_document,
    resolve_format,
)
from patwarden.clock import Clock, SystemClock
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
    "notify": "patwarden.cli.notify:notify",
    "pat": "patwarden.cli.pat:pat",
    "plan": "patwarden.cli.rotate:plan",
    "revoke": "patwarden.cli.manage:revoke",
    "rotate": "patwarden.cli.rotate:rotate",
    "serve": "patwarden.cli.serve:serve",
    "state": "patwarden.cli.state:state",
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
            if (
                OUTPUT_META in ctx.meta
                and resolve_format(ctx.meta[OUTPUT_META]) == JSON
                and not ctx.meta.get(JSON_PRINTED)
            ):
                echo_json(error_document(err))  # scripts reading stdout get a document too
            click.echo(f"Error: {err}", err=True)
            sys.exit(err.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        except BrokenPipeError:
            # The reader of stdout went away (`patwarden … | head -1`): not a bug. Point stdout at
            # /dev/null so the interpreter's final flush cannot fail again; exit as SIGPIPE would.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(141)
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
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help=CONFIG_OPTION_HELP)
@click.option(
    "--output",
    "-o",
    "output",
    type=click.Choice(FORMATS),
    default=None,
    help="Output format of every command (default: table on a terminal, json otherwise).",
)
@click.pass_context
def cli(ctx: click.Context, debug: bool, config_path: str | None, output: str | None) -> None:
    """Rotate Azure DevOps personal access tokens unattended, in tenants that enforce MFA.

    --config and --output may come before the command or after it.
    """
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    clock = ctx.obj if isinstance(ctx.obj, _ClockGiven) else _ClockGiven(SystemClock())
    app = AppContext(config_path=config_path, clock=clock.clock)
    ctx.obj = app
    ctx.call_on_close(app.close)


class _ClockGiven:
    """What :func:`main` hands the root group through ``obj``: the clock of the run."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock


def main(*, clock: Clock | None = None) -> None:
    """Console-script entry point; every command reads "now" from *clock* (default: the system's).

    ``python -m patwarden`` calls it without arguments.
    """
    cli.main(prog_name="patwarden", obj=_ClockGiven(clock or SystemClock()))
