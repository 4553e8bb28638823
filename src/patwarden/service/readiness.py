"""Can every identity get a token right now? The sign-in check of ``patwarden serve``.

Run every ``service.sign_in_check``: a user identity redeems its refresh token (a claims challenge
makes MSAL skip its cached access token), which also renews the 90-day inactivity window and shows
a revoked or expired sign-in at once, not at the next rotation. Other identities get an
application token. The answers feed ``/readyz``, the re-login metrics and the notifications.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from patwarden.config.model import Config
from patwarden.errors import PatwardenError, ReloginRequired
from patwarden.identity.credential_set import CredentialSet
from patwarden.service.snapshot import IdentityView

__all__ = ["check_identities", "identities_in_use"]


def identities_in_use(config: Config) -> dict[str, tuple[str, ...]]:
    """Each identity a rotation needs, with its roles (rotator, sink writer, auditor)."""
    roles: dict[str, list[str]] = {}

    def add(name: object, role: str) -> None:
        if isinstance(name, str) and name in config.identities:
            found = roles.setdefault(name, [])
            if role not in found:
                found.append(role)

    add(config.rotator, "rotator")
    for token in config.tokens.values():
        add(token.rotator or config.rotator, "rotator")
        for entry in token.sinks:
            add(entry.get("identity"), "sink writer")
    if config.auditor:
        add(config.auditor, "auditor")
    return {name: tuple(found) for name, found in roles.items()}


def _force_refresh_claims(now: datetime) -> str:
    # A CAE-style claims challenge: MSAL skips its cached access token and redeems the refresh
    # token (the same probe as `patwarden doctor`).
    nbf = {"essential": True, "value": str(int(now.timestamp()))}
    return json.dumps({"access_token": {"nbf": nbf}})


def check_identities(
    *, config: Config, credentials: CredentialSet, now: datetime, names: Iterable[str] | None = None
) -> list[IdentityView]:
    """Probe each identity in use (or *names*); never raises for what it checks."""
    in_use = identities_in_use(config)
    return [
        _probe(config, credentials, name, in_use.get(name, ()), now)
        for name in (names if names is not None else in_use)
    ]


def _probe(
    config: Config, credentials: CredentialSet, name: str, roles: tuple[str, ...], now: datetime
) -> IdentityView:
    from azure.core.exceptions import AzureError

    from patwarden.azdo.constants import DEFAULT_SCOPE, PAT_SCOPES

    kind = config.identities[name].kind
    scopes = PAT_SCOPES if "rotator" in roles else (DEFAULT_SCOPE,)
    view = IdentityView(name=name, kind=kind, roles=roles, checked_at=now)
    try:
        if kind == "user":
            return _user(credentials, view, scopes, now)
        credentials.get(name).get_token(*scopes)
    except ReloginRequired as err:
        return _failed(view, err.message, err.hint, relogin_now=True)
    except PatwardenError as err:
        return _failed(view, err.message, err.hint)
    except AzureError as err:
        first = (str(err).strip().splitlines() or ["no detail"])[0][:200]
        return _failed(view, f"cannot get a token: {type(err).__name__}: {first}", None)
    return _ok(view, "got a token")


def _user(
    credentials: CredentialSet, view: IdentityView, scopes: tuple[str, ...], now: datetime
) -> IdentityView:
    user = credentials.user(view.name)
    record = user.account()
    if record is None:
        return _failed(
            view,
            "not logged in",
            f"run `patwarden login --identity {view.name}` once, as the user",
            relogin_now=True,
        )
    deadline = user.relogin_deadline()
    try:
        user.get_token(*scopes, claims=_force_refresh_claims(now))
    except ReloginRequired as err:  # keep the deadline: the countdown still shows
        failed = _failed(view, err.message, err.hint, relogin_now=True)
        return replace(
            failed,
            relogin_deadline=deadline.at if deadline else None,
            relogin_cause=deadline.cause.value if deadline else None,
        )
    deadline = user.relogin_deadline()  # a refresh that rolled the refresh token moved it
    return IdentityView(
        name=view.name,
        kind=view.kind,
        roles=view.roles,
        ok=True,
        detail=f"signed in as {record.username}; sign-in refreshed",
        relogin_deadline=deadline.at if deadline else None,
        relogin_cause=deadline.cause.value if deadline else None,
        checked_at=now,
    )


def _ok(view: IdentityView, detail: str) -> IdentityView:
    return IdentityView(
        name=view.name, kind=view.kind, roles=view.roles, detail=detail, checked_at=view.checked_at
    )


def _failed(
    view: IdentityView, detail: str, fix: str | None, *, relogin_now: bool = False
) -> IdentityView:
    return IdentityView(
        name=view.name,
        kind=view.kind,
        roles=view.roles,
        ok=False,
        relogin_now=relogin_now,
        detail=detail,
        fix=fix,
        checked_at=view.checked_at,
    )
