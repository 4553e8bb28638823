"""The browser sign-in: ``GET /{tenant}/oauth2/v2.0/authorize``, its pages, and code redemption.

What a person sees, one page at a time (``POST /{tenant}/login`` carries each step): an account
picker (the ``login_hint`` account as a tile, or "Use another account"), the password, and — for
a user with MFA — an "Approve sign-in request" step. Then the browser is sent back to the app's
loopback ``redirect_uri`` with a code (``response_mode=form_post``: an auto-submitting form, as
MSAL asks; ``query``: a 302). Errors after the redirect URI is known go back the same way
(``error``, ``error_description`` with the AADSTS code, ``state``); before that, an error page.

Public clients may use any ``http://localhost[:port]`` or ``http://127.0.0.1[:port]`` redirect URI
(the "Mobile and desktop applications" platform with ``http://localhost``); anything else is
AADSTS50011. Conditional Access switches are evaluated when the password is accepted.
"""

from __future__ import annotations

import html
import secrets
import time
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from patwarden_emulator.auth import note_identity
from patwarden_emulator.context import Emulator
from patwarden_emulator.entra import conditional_access
from patwarden_emulator.entra.clients import ClientAuth
from patwarden_emulator.entra.codes import Challenge, CodeGrant
from patwarden_emulator.entra.discovery import Form, tenant_segment
from patwarden_emulator.entra.errors import (
    AadError,
    missing_parameter,
    user_disabled,
    user_not_found,
)
from patwarden_emulator.entra.scopes import delegated_grant, parse_scopes
from patwarden_emulator.entra.state import entra_state
from patwarden_emulator.entra.tokens import UserGrant, user_token_response

AUTHORIZATION_CODE_FLOW = "authorization_code"
_LOOPBACK_HOSTS = ("localhost", "127.0.0.1")

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} (emulated)</title>
<style>body{{font-family:sans-serif;max-width:28em;margin:3em auto}}
label{{display:block;margin:.6em 0}}input{{width:100%;padding:.3em}}
.error{{color:#a00}}.tile{{display:block;width:100%;margin:.4em 0;padding:.6em}}</style></head>
<body><h1>{title}</h1><p>patwarden emulator &mdash; Microsoft Entra ID sign-in for {app}.</p>
{body}</body></html>
"""


@dataclass(frozen=True)
class SignIn:
    """An authorization request waiting for the person on the sign-in page."""

    client_id: str
    app_name: str
    redirect_uri: str
    scope: str
    state: str | None
    nonce: str | None
    challenge: Challenge
    response_mode: str
    login_hint: str | None
    user_oid: str | None = None  # set once the password was accepted
    expires_at: float = 0.0


def _page(sign_in_app: str, title: str, body: str, *, status: int = 200) -> HTMLResponse:
    page = _PAGE.format(title=html.escape(title), app=html.escape(sign_in_app), body=body)
    return HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})


def _form(action: str, txn: str, step: str, inner: str) -> str:
    return (
        f'<form method="post" action="{html.escape(action)}">'
        f'<input type="hidden" name="txn" value="{txn}">'
        f'<input type="hidden" name="step" value="{step}">{inner}</form>'
    )


def _error(text: str) -> str:
    return f'<p class="error">{html.escape(text)}</p>'


def is_loopback(redirect_uri: str) -> bool:
    """Whether *redirect_uri* is a loopback URI a public (desktop) client may use."""
    parts = urlsplit(redirect_uri)
    return parts.scheme == "http" and (parts.hostname or "") in _LOOPBACK_HOSTS


def _return(sign_in: SignIn, params: dict[str, str]) -> Response:
    """Send the browser back to the app with *params* (and ``state``)."""
    if sign_in.state is not None:
        params = {**params, "state": sign_in.state}
    if sign_in.response_mode == "form_post":
        fields = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in params.items()
        )
        body = (
            f'<form method="post" action="{html.escape(sign_in.redirect_uri)}">{fields}'
            "<noscript><button>Continue</button></noscript></form>"
            "<script>document.forms[0].submit()</script>"
        )
        return _page(sign_in.app_name, "Signing you in", body)
    separator = "&" if "?" in sign_in.redirect_uri else "?"
    return RedirectResponse(sign_in.redirect_uri + separator + urlencode(params), status_code=302)


def _error_params(err: AadError, emu: Emulator) -> dict[str, str]:
    return {
        "error": err.error,
        "error_description": f"AADSTS{err.code}: {err.message}",
        "error_uri": f"{emu.base_url}/error?code={err.code}",
    }


def _start(emu: Emulator, query: dict[str, str], segment: str) -> tuple[SignIn | None, Response]:
    client_id = query.get("client_id", "")
    app = emu.directory.app(client_id) if client_id else None
    if app is None:
        text = f"AADSTS700016: Application with identifier '{client_id}' was not found."
        return None, _page("an unknown application", "Sign in", _error(text), status=400)
    redirect_uri = query.get("redirect_uri", "")
    if not (app.public_client and is_loopback(redirect_uri)):
        text = (
            f"AADSTS50011: The redirect URI '{redirect_uri}' specified in the request does not "
            f"match the redirect URIs configured for the application '{client_id}'."
        )
        return None, _page(app.display_name, "Sign in", _error(text), status=400)
    sign_in = SignIn(
        client_id=client_id,
        app_name=app.display_name,
        redirect_uri=redirect_uri,
        scope=query.get("scope", ""),
        state=query.get("state"),
        nonce=query.get("nonce"),
        challenge=Challenge(query.get("code_challenge"), query.get("code_challenge_method")),
        response_mode=query.get("response_mode", "query"),
        login_hint=query.get("login_hint"),
        expires_at=time.time() + 900,
    )
    try:
        if query.get("response_type") != "code":
            raise AadError(70005, "unsupported_response_type", "The response_type must be 'code'.")
        if sign_in.challenge.method not in (None, "S256", "plain"):
            raise AadError(
                50149, "invalid_request", "The code_challenge_method must be S256 or plain."
            )
        parse_scopes(sign_in.scope, tenant_id=emu.tenant_id)
    except AadError as err:
        return None, _return(sign_in, _error_params(err, emu))
    txn = secrets.token_urlsafe(16)
    entra_state(emu).sign_ins[txn] = sign_in
    return sign_in, _picker(emu, sign_in, txn, segment)


def _picker(emu: Emulator, sign_in: SignIn, txn: str, segment: str) -> Response:
    action = f"{emu.base_url}/{segment}/login"
    tiles = ""
    if sign_in.login_hint:
        hint = html.escape(sign_in.login_hint)
        tiles = _form(
            action,
            txn,
            "account",
            f'<button class="tile" name="username" value="{hint}">{hint}</button>',
        )
    other = _form(
        action,
        txn,
        "account",
        '<label>Use another account <input name="username" autocomplete="username"></label>'
        "<button>Next</button>",
    )
    return _page(sign_in.app_name, "Pick an account", tiles + other)


def _password_page(
    emu: Emulator, sign_in: SignIn, txn: str, segment: str, username: str, error: str = ""
) -> Response:
    inner = (
        f'<input type="hidden" name="username" value="{html.escape(username)}">'
        f"<p>{html.escape(username)}</p>{error}"
        '<label>Password <input name="password" type="password" '
        'autocomplete="current-password"></label><button>Sign in</button>'
    )
    body = _form(f"{emu.base_url}/{segment}/login", txn, "password", inner)
    return _page(sign_in.app_name, "Enter password", body, status=400 if error else 200)


def _mfa_page(emu: Emulator, sign_in: SignIn, txn: str, segment: str, upn: str) -> Response:
    inner = (
        f"<p>{html.escape(upn)}: approve the sign-in request in your authenticator app "
        "(emulated: the button below is the app).</p>"
        '<button name="decision" value="approve">Approve</button> '
        '<button name="decision" value="deny">Deny</button>'
    )
    body = _form(f"{emu.base_url}/{segment}/login", txn, "mfa", inner)
    return _page(sign_in.app_name, "Approve sign-in request", body)


def _finish(emu: Emulator, sign_in: SignIn, *, mfa: bool) -> Response:
    assert sign_in.user_oid is not None
    code = entra_state(emu).auth_codes.issue(
        CodeGrant(
            client_id=sign_in.client_id,
            redirect_uri=sign_in.redirect_uri,
            scope=sign_in.scope,
            user_oid=sign_in.user_oid,
            auth_time=time.time(),
            mfa=mfa,
            nonce=sign_in.nonce,
        ),
        sign_in.challenge,
    )
    emu.remember_secret("authorization_code", code)
    return _return(sign_in, {"code": code})


async def _step(emu: Emulator, request: Request, segment: str) -> Response:
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
    txn = form.get("txn", "")
    pending = entra_state(emu).sign_ins.get(txn)
    if not isinstance(pending, SignIn) or pending.expires_at < time.time():
        body = _error("This sign-in request has expired or is not valid. Start again.")
        return _page("the application", "Sign in", body, status=400)
    step = form.get("step")
    username = form.get("username", "").strip()
    if step == "account":
        if not username:
            return _picker(emu, pending, txn, segment)
        return _password_page(emu, pending, txn, segment, username)
    if step == "password":
        user = emu.directory.user_by_upn(username) if username else None
        if user is None or user.removed or not user.check_password(form.get("password", "")):
            wrong = _error("Your account or password is incorrect.")
            return _password_page(emu, pending, txn, segment, username, wrong)
        note_identity(request, user.upn)
        try:
            if not user.enabled:
                raise user_disabled(user.upn)
            conditional_access.check_token(
                emu, user, flow=AUTHORIZATION_CODE_FLOW, error="access_denied"
            )
        except AadError as err:
            entra_state(emu).sign_ins.pop(txn, None)
            return _return(pending, _error_params(err, emu))
        pending = replace(pending, user_oid=user.oid)
        entra_state(emu).sign_ins[txn] = pending
        if user.mfa_required:
            return _mfa_page(emu, pending, txn, segment, user.upn)
        entra_state(emu).sign_ins.pop(txn, None)
        return _finish(emu, pending, mfa=False)
    if step == "mfa" and pending.user_oid is not None:
        entra_state(emu).sign_ins.pop(txn, None)
        if form.get("decision") != "approve":
            denied = AadError(
                500121,
                "access_denied",
                "Authentication failed during strong authentication request.",
            )
            return _return(pending, _error_params(denied, emu))
        return _finish(emu, pending, mfa=True)
    return _page(pending.app_name, "Sign in", _error("Unexpected step."), status=400)


def routes(emu: Emulator) -> list[BaseRoute]:
    """``GET /{tenant}/oauth2/v2.0/authorize`` and ``POST /{tenant}/login``."""

    async def authorize(request: Request) -> Response:
        try:
            segment = tenant_segment(emu, request.path_params["tenant"])
        except AadError as err:
            return _page("an application", "Sign in", _error(str(err)), status=400)
        _, response = _start(emu, dict(request.query_params), segment)
        return response

    async def login(request: Request) -> Response:
        try:
            segment = tenant_segment(emu, request.path_params["tenant"])
        except AadError as err:
            return _page("an application", "Sign in", _error(str(err)), status=400)
        return await _step(emu, request, segment)

    return [
        Route("/{tenant}/oauth2/v2.0/authorize", authorize, methods=["GET"]),
        Route("/{tenant}/login", login, methods=["POST"]),
    ]


def authorization_code_grant(
    emu: Emulator, form: Form, client: ClientAuth
) -> tuple[dict[str, Any], str]:
    """``grant_type=authorization_code``: redeem a code once, checking PKCE and the redirect URI.

    Raises:
        AadError: see :meth:`patwarden_emulator.entra.codes.AuthCodes.redeem`; a disabled or
            removed user; a Conditional Access switch.
    """
    code = form.get("code")
    if not code:
        raise missing_parameter("code")
    grant = entra_state(emu).auth_codes.redeem(
        code=code,
        client_id=client.app.client_id,
        redirect_uri=form.get("redirect_uri"),
        verifier=form.get("code_verifier"),
    )
    user = emu.directory.user_by_oid(grant.user_oid)
    if user is None or user.removed:
        raise user_not_found(grant.user_oid, emu.tenant_id)
    if not user.enabled:
        raise user_disabled(user.upn)
    conditional_access.check_token(emu, user, flow=AUTHORIZATION_CODE_FLOW)
    request = parse_scopes(grant.scope, tenant_id=emu.tenant_id)
    user_grant = UserGrant(
        user=user,
        app=client.app,
        request=request,
        permissions=delegated_grant(request, app=client.app),
        auth_time=grant.auth_time,
        mfa=grant.mfa,
        with_refresh_token=request.wants_refresh_token,
        client_info=form.get("client_info") == "1",
        nonce=grant.nonce,
        flow=AUTHORIZATION_CODE_FLOW,
        cae=conditional_access.declares_cae(form.get("claims")),
    )
    return user_token_response(emu, entra_state(emu).sessions, user_grant), user.upn
