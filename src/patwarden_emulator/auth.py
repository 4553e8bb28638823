"""Who is calling: bearer-token principals shared by the emulated Azure DevOps and Key Vault."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import jwt
from starlette.requests import Request

from patwarden_emulator.context import Emulator


@dataclass(frozen=True)
class Principal:
    """The identity behind a verified Entra access token."""

    kind: Literal["user", "app"]
    object_id: str
    tenant_id: str
    client_id: str
    scopes: frozenset[str]
    roles: frozenset[str]
    name: str  # UPN for users, app display name / client id for apps

    @property
    def is_service_principal(self) -> bool:
        return self.kind == "app"


def authorization(request: Request) -> tuple[str, str] | None:
    """Split the Authorization header into (scheme lower-cased, credentials)."""
    header = request.headers.get("authorization")
    if not header or " " not in header:
        return None
    scheme, _, value = header.partition(" ")
    return scheme.lower(), value.strip()


def note_identity(request: Request, name: str) -> None:
    """Record who made the request for the admin request log (never a secret)."""
    request.state.identity = name


def bearer_principal(emu: Emulator, request: Request, *, audience: str) -> Principal | None:
    """Return the principal of a valid Bearer token for *audience*, or None.

    Access tokens are the emulator's own RS256 JWTs (see ``entra.py``): users carry ``scp`` and
    ``idtyp=user``; apps carry ``roles`` and ``idtyp=app`` and no ``scp``.
    """
    parsed = authorization(request)
    if parsed is None or parsed[0] != "bearer":
        return None
    try:
        claims = emu.keys.verify(parsed[1], audience=audience)
    except jwt.InvalidTokenError:
        return None
    is_app = claims.get("idtyp") == "app" or "scp" not in claims
    principal = Principal(
        kind="app" if is_app else "user",
        object_id=str(claims.get("oid", "")),
        tenant_id=str(claims.get("tid", "")),
        client_id=str(claims.get("appid", "")),
        scopes=frozenset(str(claims.get("scp", "")).split()),
        roles=frozenset(claims.get("roles", []) or []),
        name=str(claims.get("upn") or claims.get("app_displayname") or claims.get("appid", "")),
    )
    note_identity(request, principal.name)
    return principal
