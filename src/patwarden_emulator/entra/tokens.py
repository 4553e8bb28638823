"""Mint access tokens, id tokens and token responses with Entra's claims (contract §4.1, §4.2).

Access tokens are v1-shaped (``iss`` = ``https://sts.windows.net/{tid}/``, ``ver`` 1.0) like the
tokens Azure DevOps and Key Vault receive. User tokens carry ``scp`` and ``idtyp=user``; app tokens
carry ``idtyp=app`` and no ``scp``. Id tokens are v2 (``iss`` = the v2 issuer, ``aud`` = client id).
Every access and refresh token issued is passed to ``Emulator.remember_secret``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from patwarden_emulator.context import Emulator
from patwarden_emulator.directory import App, User
from patwarden_emulator.entra.scopes import ScopeRequest, granted_scope_string
from patwarden_emulator.entra.sessions import Sessions, new_refresh_token

ACCESS_TOKEN_LIFETIME = 3600
EXPIRES_IN = ACCESS_TOKEN_LIFETIME - 1  # what Entra reports: a second under the token's lifetime


def b64url(raw: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _opaque(length: int = 16) -> str:
    return b64url(secrets.token_bytes(length))


def pairwise_subject(object_id: str, client_id: str) -> str:
    """The ``sub`` claim: stable per user and app, like Entra's pairwise subject."""
    return b64url(hashlib.sha256(f"{object_id}:{client_id}".encode()).digest())


def client_info(user: User, tenant_id: str) -> str:
    """The ``client_info`` MSAL builds its account key from: base64url ``{"uid", "utid"}``."""
    return b64url(json.dumps({"uid": user.oid, "utid": tenant_id}).encode())


@dataclass(frozen=True)
class UserGrant:
    """Everything a delegated token response is built from."""

    user: User
    app: App
    request: ScopeRequest
    permissions: tuple[str, ...]
    auth_time: float
    mfa: bool
    with_refresh_token: bool
    client_info: bool
    nonce: str | None = None
    flow: str = ""  # how the session began (device_code, authorization_code, password)
    cae: bool = False  # the client declared the CAE capability (``xms_cc: CP1``)


def _times(now: int) -> dict[str, int]:
    return {"iat": now, "nbf": now, "exp": now + ACCESS_TOKEN_LIFETIME}


def user_access_token(emu: Emulator, grant: UserGrant, *, now: int) -> str:
    """A delegated access token for ``grant.request.audience``."""
    user, app = grant.user, grant.app
    acr = "0" if app.public_client else "1"
    claims: dict[str, Any] = {
        "aud": grant.request.audience,
        "iss": emu.issuer,
        **_times(now),
        "acr": "1",
        "aio": _opaque(),
        "amr": ["pwd", "mfa"] if grant.mfa else ["pwd"],
        "appid": app.client_id,
        "appidacr": acr,
        "azp": app.client_id,
        "azpacr": acr,
        "auth_time": int(grant.auth_time),
        "idtyp": "user",
        "ipaddr": "127.0.0.1",
        "name": user.display_name,
        "oid": user.oid,
        "rh": _opaque(),
        "scp": " ".join(grant.permissions),
        "sub": pairwise_subject(user.oid, app.client_id),
        "tid": emu.tenant_id,
        "unique_name": user.upn,
        "upn": user.upn,
        "uti": _opaque(),
        "ver": "1.0",
    }
    if grant.cae:
        claims["xms_cc"] = ["CP1"]
    return emu.keys.sign(claims)


def id_token(emu: Emulator, grant: UserGrant, *, now: int) -> str:
    """A v2 id token for the client (what MSAL reads the account from)."""
    claims: dict[str, Any] = {
        "aud": grant.app.client_id,
        "iss": emu.issuer_v2,
        **_times(now),
        "name": grant.user.display_name,
        "oid": grant.user.oid,
        "preferred_username": grant.user.upn,
        "rh": _opaque(),
        "sub": pairwise_subject(grant.user.oid, grant.app.client_id),
        "tid": emu.tenant_id,
        "uti": _opaque(),
        "ver": "2.0",
    }
    if grant.nonce:
        claims["nonce"] = grant.nonce
    return emu.keys.sign(claims)


def user_token_response(emu: Emulator, sessions: Sessions, grant: UserGrant) -> dict[str, Any]:
    """The JSON body of a successful delegated token request; stores the new refresh token."""
    now = int(time.time())
    access_token = user_access_token(emu, grant, now=now)
    emu.remember_secret("access_token", access_token)
    body: dict[str, Any] = {
        "token_type": "Bearer",
        "scope": granted_scope_string(grant.request, grant.permissions),
        "expires_in": EXPIRES_IN,
        "ext_expires_in": EXPIRES_IN,
        "access_token": access_token,
    }
    if grant.with_refresh_token:
        refresh_token = new_refresh_token()
        sessions.remember(
            refresh_token,
            user_oid=grant.user.oid,
            client_id=grant.app.client_id,
            scopes=" ".join(
                [
                    *(f"{grant.request.prefix}/{p}" for p in grant.request.permissions),
                    "offline_access",
                ]
            ),
            auth_time=grant.auth_time,
            mfa=grant.mfa,
            flow=grant.flow,
        )
        emu.remember_secret("refresh_token", refresh_token)
        body["refresh_token"] = refresh_token
    if grant.request.wants_id_token:
        body["id_token"] = id_token(emu, grant, now=now)
    if grant.client_info:
        body["client_info"] = client_info(grant.user, emu.tenant_id)
    return body


def app_token_response(emu: Emulator, *, app: App, audience: str, appidacr: str) -> dict[str, Any]:
    """The JSON body of a successful client-credentials request (no ``scp``, ``idtyp=app``)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "aud": audience,
        "iss": emu.issuer,
        **_times(now),
        "aio": _opaque(),
        "app_displayname": app.display_name,
        "appid": app.client_id,
        "appidacr": appidacr,
        "azp": app.client_id,
        "azpacr": appidacr,
        "idp": emu.issuer,
        "idtyp": "app",
        "oid": app.sp_oid,
        "rh": _opaque(),
        "sub": app.sp_oid,
        "tid": emu.tenant_id,
        "uti": _opaque(),
        "ver": "1.0",
    }
    access_token = emu.keys.sign(claims)
    emu.remember_secret("access_token", access_token)
    return {
        "token_type": "Bearer",
        "expires_in": EXPIRES_IN,
        "ext_expires_in": EXPIRES_IN,
        "access_token": access_token,
    }
