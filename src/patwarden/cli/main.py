"""Entry point: a lazy click group so `patwarden --help` starts fast.

Command modules are imported only when their command runs (or its ``--help`` is asked for):
``patwarden --help`` lists the commands from the short helps in :data:`_COMMANDS`, so it imports
no command module, no SDK, no config model and scans no entry point. Command modules in turn
import the Azure SDKs inside their functions, never at module level. What start-up may import is
guarded by tests/cli/test_main.py and measured by benchmarks/startup.py (docs/performance.md).

The root group creates the run's :class:`~patwarden.app.context.AppContext` (with the clock
given to :func:`main`) as the click context object and closes it when the command ends. The
shared options ``--config`` and ``--output/-o`` work before the subcommand as well as after it.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
import types
from typing import TYPE_CHECKING, Any, NoReturn, cast

import click

from patwarden import __version__
from patwarden.cli.options import CONFIG_OPTION_HELP, FORMATS, OUTPUT_META
from patwarden.clock import Clock, SystemClock

if TYPE_CHECKING:
    from importlib.abc import Loader  # 8 ms to import: the finder below only quacks like one

# name -> ("module:attribute", short help). One entry per command group; keep sorted. The short
# help is the command's own first help line (tests/cli/test_main.py checks): `patwarden --help`
# lists the commands from here without importing their modules.
_COMMANDS: dict[str, tuple[str, str]] = {
    "adopt": (
        "patwarden.cli.manage:adopt",
        "Rebuild the state of configured tokens from their PATs' markers and their sinks.",
    ),
    "audit": (
        "patwarden.cli.status:audit",
        "The append-only audit log: rotations, revocations, adoptions, hooks that failed.",
    ),
    "config": (
        "patwarden.cli.config:config",
        "Check the configuration file and related helpers.",
    ),
    "demo": (
        "patwarden_emulator.commands:demo",
        "Run a full rotation against a throwaway local emulator; needs no Azure and no setup.",
    ),
    "doctor": (
        "patwarden.cli.doctor:doctor",
        "Check identities, PAT API access, sinks, policy clamps and the clock.",
    ),
    "emulator": (
        "patwarden_emulator.commands:emulator",
        "Serve emulated Entra ID, Azure DevOps and Key Vault over HTTPS on loopback.",
    ),
    "inventory": (
        "patwarden.cli.inventory:inventory",
        "List every PAT of every user in the organizations, with findings and fixes.",
    ),
    "login": (
        "patwarden.cli.login:login",
        "Sign the rotator user in once: with a device code (default) or the browser.",
    ),
    "logout": (
        "patwarden.cli.login:logout",
        "Remove an identity's token cache and account record; say which PATs stop rotating.",
    ),
    "notify": (
        "patwarden.cli.notify:notify",
        "Notification channels of `patwarden serve` (notifications: in the config).",
    ),
    "pat": (
        "patwarden.cli.pat:pat",
        "Ad-hoc work on the rotator's PATs: list, show, create, extend, revoke.",
    ),
    "plan": (
        "patwarden.cli.rotate:plan",
        "Say which tokens are due for rotation and why; changes nothing, calls nothing.",
    ),
    "revoke": (
        "patwarden.cli.manage:revoke",
        "Revoke a managed token's PAT now (after a leak, or to retire it).",
    ),
    "rotate": (
        "patwarden.cli.rotate:rotate",
        "Reconcile, then rotate every due token: create, distribute, verify, promote, revoke.",
    ),
    "serve": (
        "patwarden.cli.serve:serve",
        "Run unattended: rotate every token when due, repair, notify, serve health and metrics.",
    ),
    "state": (
        "patwarden.cli.state:state",
        "Check the state, or copy it to another backend (docs/state.md).",
    ),
    "status": (
        "patwarden.cli.status:status",
        "Every managed token: its PAT, expiry, next rotation, sinks, last run; and re-login dates.",
    ),
}


_HELP_ONLY = "patwarden.help_only"  # click meta key: the subcommand will only print its help


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use; its help lists them unimported."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = _COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, attr = entry[0].split(":")
        command = getattr(importlib.import_module(module_name), attr)
        if not isinstance(command, click.Command):  # pragma: no cover - programming error
            raise TypeError(f"{entry[0]} is not a click command")
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name is not None and command is not None:
            ctx.meta[_HELP_ONLY] = _asks_for_help(ctx, command, name, rest)
        return name, command, rest

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of ``--help`` from the registry's short helps, importing nothing."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, _short_help(name, limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
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
            _report(ctx, err)


def _short_help(name: str, limit: int) -> str:
    """The registry's short help of *name*, shortened to *limit* as click shortens a command's."""
    return click.Command(name, help=_COMMANDS[name][1]).get_short_help_str(limit)


def _asks_for_help(ctx: click.Context, command: click.Command, name: str, args: list[str]) -> bool:
    """Whether click answers ``patwarden NAME ARGS`` with NAME's help before anything runs.

    The command's own option parser reads *args* (no callback runs): ``--help`` given as an option,
    not as another option's value. A nested ``NAME SUB --help`` or a parse error says no.
    """
    probe = command.context_class(
        command, info_name=name, parent=ctx, resilient_parsing=True, **command.context_settings
    )
    help_option = command.get_help_option(probe)
    if help_option is None or help_option.name is None:
        return False
    try:
        options, _, _ = command.make_parser(probe).parse_args(args=list(args))
    except click.UsageError:
        return False
    return bool(options.get(help_option.name))


def _report(ctx: click.Context, err: Exception) -> NoReturn:
    """Print *err* (a JSON error document too when the command's output is JSON) and exit."""
    from patwarden.cli.options import JSON
    from patwarden.cli.output import JSON_PRINTED, echo_json, error_document, resolve_format
    from patwarden.errors import PatwardenError

    if not isinstance(err, PatwardenError):
        # Only the class name: an unexpected exception's text may quote a response body.
        click.echo(
            f"Error: unexpected {type(err).__name__}. This is a bug in patwarden; rerun with "
            "--debug for the traceback and report it (check it for secrets before sharing).",
            err=True,
        )
        sys.exit(70)
    if (
        OUTPUT_META in ctx.meta
        and resolve_format(ctx.meta[OUTPUT_META]) == JSON
        and not ctx.meta.get(JSON_PRINTED)
    ):
        echo_json(error_document(err))  # scripts reading stdout get a document too
    click.echo(f"Error: {err}", err=True)
    sys.exit(err.exit_code)


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
    if ctx.meta.get(_HELP_ONLY):
        return  # `patwarden COMMAND --help`: click prints the help next; build and import nothing
    import logging

    from patwarden.app.context import AppContext

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

    ``python -m patwarden`` calls it without arguments. It owns the process, which ends when it
    does (click exits): it defers httpx's own CLI (:func:`_defer_httpx_cli`) and, at the end,
    freezes the heap (``gc.freeze``): everything the command built is garbage then, and the
    interpreter's final collection would traverse all of it only to free it (~0.1 s after a
    nothing-due run over 1,000 tokens; docs/performance.md). The memory goes back with the process.
    """
    _defer_httpx_cli()
    try:
        cli.main(prog_name="patwarden", obj=_ClockGiven(clock or SystemClock()))
    finally:
        gc.freeze()


def _defer_httpx_cli() -> None:
    """Keep ``import httpx`` from importing httpx's command-line client, in this process.

    httpx 0.28's package imports ``httpx._main`` (click, rich, pygments) whenever those are
    installed, as patwarden's own dependencies install them: ~40 ms of every command that talks
    HTTP, for a client patwarden never runs (upstream made that import lazy later:
    pydantic/httpx2#947). Here ``httpx._main`` is a module whose ``main`` imports it on first call.
    """
    if "httpx" not in sys.modules and not any(
        isinstance(finder, _HttpxCliOnCall) for finder in sys.meta_path
    ):
        sys.meta_path.insert(0, _HttpxCliOnCall())


class _HttpxCliOnCall:
    """The import system's finder and loader of ``httpx._main`` (see :func:`_defer_httpx_cli`)."""

    NAME = "httpx._main"

    def find_spec(self, name: str, path: object = None, target: object = None) -> Any:
        if name != self.NAME:
            return None
        from importlib.machinery import ModuleSpec

        return ModuleSpec(name, cast("Loader", self))

    def create_module(self, spec: Any) -> None:
        return None  # an ordinary module

    def exec_module(self, module: types.ModuleType) -> None:
        def main(*args: Any, **kwargs: Any) -> Any:
            if sys.modules.get(self.NAME) is module:  # the first call: the real one replaces it
                del sys.modules[self.NAME]
                sys.meta_path.remove(self)
            return importlib.import_module(self.NAME).main(*args, **kwargs)

        module.main = main  # type: ignore[attr-defined]
