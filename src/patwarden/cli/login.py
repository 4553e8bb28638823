"""``patwarden login`` and ``patwarden logout``: start, hand over and end the rotator's sign-in."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from patwarden.cli.options import LazyPath, app_context, config_option, require_user_identity
from patwarden.errors import DOCS, ConfigError, PatwardenError

if TYPE_CHECKING:
    from pathlib import Path

    from patwarden.config.model import Config
    from patwarden.domain.relogin import ReloginDeadline
    from patwarden.identity.credential_set import CredentialSet

_IDENTITY_HELP = "The kind: user identity to sign in (default: the configured rotator)."


@click.command("login")
@click.option("--identity", "identity_name", metavar="NAME", help=_IDENTITY_HELP)
@config_option()
@click.option(
    "--timeout",
    type=click.IntRange(min=1),
    metavar="SECONDS",
    help="Give up after this many seconds (default: when the code expires, ~15 minutes; "
    "10 minutes for --browser).",
)
@click.option(
    "--browser",
    "use_browser",
    is_flag=True,
    help="Sign in with the browser (authorization code flow with PKCE, loopback redirect) "
    "instead of a device code: for tenants whose Conditional Access blocks the device-code flow.",
)
@click.option(
    "--no-open",
    is_flag=True,
    help="With --browser: only print the sign-in URL, do not open a browser (open it yourself, "
    "e.g. through an SSH tunnel to --port).",
)
@click.option(
    "--port",
    type=click.IntRange(min=0, max=65535),
    default=0,
    metavar="PORT",
    show_default="any free port",
    help="With --browser: the loopback port to listen on for the redirect.",
)
@click.option(
    "--export",
    "export_file",
    type=LazyPath(dir_okay=False),
    metavar="FILE",
    help="Write the sign-in to FILE, sealed with the identity's cache key (the runner's), "
    "instead of this machine's cache; hand FILE to the runner's `login --import`.",
)
@click.option(
    "--import",
    "import_file",
    type=LazyPath(dir_okay=False),
    metavar="FILE",
    help="Take over a sign-in exported on a workstation with `login --export FILE`; no "
    "interactive sign-in here.",
)
def login(
    identity_name: str | None,
    config_path: str | None,
    timeout: int | None,
    use_browser: bool,
    no_open: bool,
    port: int,
    export_file: Path | None,
    import_file: Path | None,
) -> None:
    """Sign the rotator user in once: with a device code (default) or the browser.

    A device code works over SSH and in containers: open the URL printed on stderr on any
    device, enter the code and sign in as the rotator user (MFA included). `--browser` signs
    in through the system browser instead (what tenants that block the device-code flow
    allow). The sign-in is then kept in the encrypted token cache and refreshed silently by
    every later run. `--export FILE` / `--import FILE` hand it from a workstation to a runner.
    """
    if import_file is not None and (use_browser or export_file is not None):
        raise ConfigError(
            "--import cannot be combined with --browser or --export",
            hint="run `patwarden login --import FILE` on the runner, alone",
        )
    if (no_open or port) and not use_browser:
        raise ConfigError(
            "--no-open and --port only apply to --browser", hint="add --browser, or drop them"
        )
    from patwarden.identity.browser import BrowserOptions
    from patwarden.identity.handover import export_target

    app = app_context(config_path)
    config = app.config
    name = identity_name or config.rotator
    require_user_identity(config, name, action="log in")
    user = app.credentials.user(name)
    if import_file is not None:
        _import(app.credentials, name, import_file, now=app.clock.now())
        return
    browser = BrowserOptions(open_browser=not no_open, port=port) if use_browser else None
    if export_file is not None:
        _require_portable_key(config, name)
    target = export_target(user, export_file) if export_file is not None else None
    expected = getattr(config.identities[name], "username", None)
    who = f" as {expected}" if expected else ""
    how = "the browser" if use_browser else "a device code"
    click.echo(f"Signing in identity {name!r}{who} with {how}.", err=True)
    record = user.login(out=sys.stderr, timeout=timeout, browser=browser, store=target)
    click.echo(f"Logged in identity {name!r} as {record.username} (tenant {record.tenant_id}).")
    if target is not None:
        click.echo(
            f"The sign-in is sealed with the cache key from {target.cipher.source} in "
            f"{target.path} (mode 0600). Copy it to the runner, run `patwarden login --import "
            f"{target.path.name}` there, then delete it."
        )
        return
    deadline = user.relogin_deadline()
    if deadline is not None:
        click.echo(relogin_sentence(deadline, now=app.clock.now()))
    click.echo(f"The sign-in is kept in {user.store.description}.")


def _require_portable_key(config: Config, name: str) -> None:
    """``--export`` seals with the configured key; an OS keyring key never leaves this machine."""
    from patwarden.config.model import FileCacheConfig
    from patwarden.config.refs import EnvRef, FileRef, KeyVaultRef

    cache = getattr(config.identities[name], "cache", None)
    key = getattr(cache, "key", None)
    if isinstance(key, EnvRef | FileRef | KeyVaultRef):
        return
    keyring = key is not None or isinstance(cache, FileCacheConfig)
    source = "comes from this machine's OS keyring" if keyring else "is not configured"
    raise ConfigError(
        f"cannot export the sign-in of identity {name!r}: its cache key {source}, and the runner "
        "needs the same key to open the file",
        hint=(
            "set cache.key of the identity to the runner's key ({env: …}, {file: …} or "
            "{key_vault: …}) in both configurations; make one with `patwarden config cache-key`"
        ),
        docs=f"{DOCS}/identities.md#sign-in-here-run-there",
    )


def _import(credentials: CredentialSet, name: str, path: Path, *, now: datetime) -> None:
    from patwarden.identity.handover import import_sign_in

    user = credentials.user(name)
    record = import_sign_in(user, path, now=now)
    method = {"browser": "the browser", "device_code": "a device code"}.get(
        record.sign_in_method, "an interactive sign-in"
    )
    when = record.logged_in_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    click.echo(
        f"Imported the sign-in of identity {name!r}: {record.username} signed in on "
        f"{record.signed_in_on or 'another machine'} with {method} at {when}."
    )
    click.echo("This runner refreshed it silently: the hand-over works.")
    deadline = user.relogin_deadline()
    if deadline is not None:
        click.echo(relogin_sentence(deadline, now=now))
    click.echo(f"The sign-in is kept in {user.store.description}. Delete {path} now.")


def relogin_sentence(deadline: ReloginDeadline, *, now: datetime) -> str:
    """The sentence telling a human when and why the next interactive login is due."""
    from patwarden.domain.relogin import ReloginCause

    days = deadline.days_left(now)
    when = deadline.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if deadline.cause is ReloginCause.SIGN_IN_FREQUENCY:
        why = "the Conditional Access sign-in frequency counts from this login"
    else:
        why = "if nothing refreshes the sign-in for 90 days; every run slides this window"
    return f"Re-login needed in {days:.0f} days (by {when}): {why}."


@click.command("logout")
@click.option(
    "--identity",
    "identity_name",
    metavar="NAME",
    help="The kind: user identity to sign out (default: the configured rotator).",
)
@config_option()
def logout(identity_name: str | None, config_path: str | None) -> None:
    """Remove an identity's token cache and account record; say which PATs stop rotating.

    Run `patwarden login` to sign in again. The refresh token is only forgotten locally; to
    invalidate it everywhere, revoke the user's sessions in Entra ID.
    """
    app = app_context(config_path)
    config = app.config
    name = identity_name or config.rotator
    require_user_identity(config, name, action="log out")
    removed, where = _forget(app.credentials, config, name)
    if removed:
        click.echo(f"Logged out identity {name!r}: removed its token cache ({where}).")
    else:
        click.echo(f"Identity {name!r} was not logged in (no token cache in {where}).")
    stopping = tokens_rotated_by(config, name)
    if stopping:
        click.echo(
            f"These tokens will stop rotating until `patwarden login --identity {name}` is run "
            f"again: {', '.join(stopping)}."
        )
    elif name == config.rotator:
        click.echo("No configured token will stop rotating (the config lists none yet).")
    if config.auditor == name:
        click.echo(
            f"Identity {name!r} is also the auditor: inventory and admin revocation stop too."
        )


def _forget(credentials: CredentialSet, config: Config, name: str) -> tuple[bool, str]:
    """Delete the identity's cache; for a file cache, even when its key cannot be loaded."""
    from patwarden.config.model import FileCacheConfig

    user = credentials.user(name)
    try:
        where = user.store.description
        return user.logout(), where
    except PatwardenError as err:
        cache = getattr(config.identities[name], "cache", None)
        if not isinstance(cache, FileCacheConfig):
            raise
        # A lost or wrong key must not keep a stale sign-in around: remove the file itself.
        path = config.cache_path(name)
        existed = path.exists()
        path.unlink(missing_ok=True)
        click.echo(
            f"Note: the token cache could not be opened ({err.message}); removed the file anyway.",
            err=True,
        )
        return existed, f"file {path}"


def tokens_rotated_by(config: Config, identity: str) -> list[str]:
    """Names of the configured tokens that *identity* rotates.

    A token's rotator is its own ``rotator`` key, else the top-level ``rotator``.
    """
    return sorted(
        name
        for name, body in config.tokens.items()
        if (_field(body, "rotator") or config.rotator) == identity
    )


def _field(body: Any, key: str) -> Any:
    """A key of a token entry, whether the entry is still a raw mapping or a parsed model."""
    if isinstance(body, Mapping):
        return body.get(key)
    return getattr(body, key, None)
