"""``patwarden login`` and ``patwarden logout``: start and end the rotator user's sign-in."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from patwarden.cli.options import app_context, config_option, require_user_identity
from patwarden.errors import PatwardenError

if TYPE_CHECKING:
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
    help="Give up after this many seconds (default: when the code expires, ~15 minutes).",
)
def login(identity_name: str | None, config_path: str | None, timeout: int | None) -> None:
    """Sign the rotator user in once with a device code (works over SSH and in containers).

    Prints a URL and a code on stderr: open the URL on any device, enter the code and sign in
    as the rotator user (MFA included). The sign-in is then kept in the encrypted token cache
    and refreshed silently by every later run; nothing prompts again until re-login is due.
    """
    app = app_context(config_path)
    config = app.config
    name = identity_name or config.rotator
    require_user_identity(config, name, action="log in")
    user = app.credentials.user(name)
    expected = getattr(config.identities[name], "username", None)
    who = f" as {expected}" if expected else ""
    click.echo(f"Signing in identity {name!r}{who} with a device code.", err=True)
    record = user.login(out=sys.stderr, timeout=timeout)
    deadline = user.relogin_deadline()
    where = user.store.description
    click.echo(f"Logged in identity {name!r} as {record.username} (tenant {record.tenant_id}).")
    if deadline is not None:
        click.echo(relogin_sentence(deadline, now=app.clock.now()))
    click.echo(f"The sign-in is kept in {where}.")


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
