"""Options and look-ups several commands share: ``--config``, ``--identity``, ``--org``, and the
run's :class:`~patwarden.app.context.AppContext`.

``--config`` and ``--output`` exist on the root group too (``patwarden --config F rotate``); a
command's own option falls back to the root's value (:func:`inherit_root`), and giving both with
different values is a usage error.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from patwarden.clock import Clock, SystemClock
from patwarden.errors import DOCS, ConfigError

if TYPE_CHECKING:
    from pathlib import Path

    from patwarden.app.context import AppContext
    from patwarden.config.model import Config

CONFIG_OPTION_HELP = "Config file (default: $PATWARDEN_CONFIG, else ./patwarden.yaml)."
SP_ROTATOR_DOCS = f"{DOCS}/identities.md#why-a-service-principal-cannot-rotate"
LEGACY_DOCS = f"{DOCS}/identities.md#legacy-password-flow"

TABLE = "table"
JSON = "json"
FORMATS = (TABLE, JSON)  # --output (rendered by patwarden.cli.output)
OUTPUT_META = "patwarden.output"  # click meta key: the running command's --output, if it has one
_Command = TypeVar("_Command", bound=Callable[..., Any])


def inherit_root(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Option callback: *value*, else the root group's option of the same name.

    Raises:
        click.BadParameter: both were given, with different values.
    """
    root = ctx.find_root()
    if root is ctx or param.name is None:
        return value
    given = root.params.get(param.name)
    if value is not None and given is not None and value != given:
        raise click.BadParameter(
            f"given before the command as {given!r} and after it as {value!r}; give it once",
            ctx=ctx,
            param=param,
        )
    return value if value is not None else given


def inherit_output(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """:func:`inherit_root` for ``--output table|json``, also telling the top-level error handler
    which format the command's failure should be printed in."""
    chosen = inherit_root(ctx, param, value)
    ctx.meta[OUTPUT_META] = chosen
    return chosen


class LazyPath(click.Path):
    """``click.Path`` whose value is a :class:`pathlib.Path`.

    ``click.Path(path_type=Path)`` needs ``pathlib`` when the option is declared; this imports it
    only when a value is converted, so ``COMMAND --help`` does not pay for it (issue 16).
    """

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path:
        from pathlib import Path

        return Path(os.fsdecode(super().convert(value, param, ctx)))


def config_option() -> Callable[[_Command], _Command]:
    """``--config FILE`` (also accepted before the command); the parameter is ``config_path``."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        callback=inherit_root,
        help=CONFIG_OPTION_HELP,
    )


def app_context(config_path: str | None = None) -> AppContext:
    """The run's :class:`AppContext` (made by the root group), reading *config_path*.

    A command invoked without the root group (a test) gets a context of its own, closed with the
    command's click context.
    """
    from patwarden.app.context import AppContext

    ctx = click.get_current_context()
    app = ctx.find_object(AppContext)
    if app is None:
        app = AppContext(clock=SystemClock())
        ctx.obj = app
        ctx.call_on_close(app.close)
    if config_path is not None:
        app.config_path = config_path
    return app


def command_clock(ctx: click.Context | None = None) -> Clock:
    """The run's clock (the AppContext's), for values converted while parsing options."""
    from patwarden.app.context import AppContext

    context = ctx or click.get_current_context(silent=True)
    app = context.find_object(AppContext) if context is not None else None
    return app.clock if app is not None else SystemClock()


def org_option() -> Callable[[_Command], _Command]:
    """``--org NAME``; the parameter is ``org`` (None: the configured organization)."""
    return click.option(
        "--org",
        "org",
        metavar="NAME",
        help="Azure DevOps organization (default: the one in the config; required when it "
        "lists several).",
    )


def pick_org(config: Config, org: str | None) -> str:
    """*org* if given, else the config's only organization.

    Raises:
        ConfigError: the config manages several organizations and none was chosen.
    """
    if org:
        return org
    if len(config.orgs) == 1:
        return config.orgs[0]
    raise ConfigError(
        f"this configuration manages several organizations ({', '.join(config.orgs)}); "
        "say which one this command is for",
        hint="pass --org NAME",
    )


def require_user_identity(config: Config, name: str, *, action: str) -> None:
    """Check, before anything is built or sent, that *name* is a ``kind: user`` identity.

    *action* completes "cannot …", e.g. "log in".

    Raises:
        ConfigError: no such identity, or it is of another kind (the message says why that kind
            has nothing to log in, and what to do instead).
    """
    from patwarden.config.model import APP_IDENTITY_KINDS

    identity = config.identities.get(name)
    if identity is None:
        raise ConfigError(
            f"no identity named {name!r} in {config.source or 'the configuration'}",
            hint="configured identities: " + (", ".join(sorted(config.identities)) or "none"),
        )
    kind = identity.kind
    if kind == "user":
        return
    if kind in APP_IDENTITY_KINDS:
        raise ConfigError(
            f"cannot {action} identity {name!r}: it is a {kind}, which gets application tokens on "
            "its own (nothing to log in) — and an application token can never manage PATs: the "
            "Azure DevOps PAT Lifecycle API accepts only a user's delegated Entra token "
            "('Service principals are not allowed to perform this action.')",
            hint="sign in a dedicated Entra user instead: declare it with kind: user, point "
            f"`rotator:` at it and run `patwarden login --identity <that name>`; keep {name!r} "
            "for writing sinks",
            docs=SP_ROTATOR_DOCS,
        )
    raise ConfigError(
        f"cannot {action} identity {name!r}: it is a {kind} identity, which signs in with a "
        "stored username and password on every run (nothing to log in interactively)",
        hint="switch it to kind: user (device code, works with MFA) and run "
        f"`patwarden login --identity {name}`",
        docs=LEGACY_DOCS,
    )
