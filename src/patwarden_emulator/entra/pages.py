"""The human side of the device flow: ``{base}/devicelogin``, a tiny sign-in form.

A person types the user code, a username and the password and approves (this is where the human
"satisfies MFA"), or declines the request. The page never echoes the password.
"""

from __future__ import annotations

import html
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from patwarden_emulator.auth import note_identity
from patwarden_emulator.context import Emulator
from patwarden_emulator.entra.state import entra_state

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to your account (emulated)</title>
<style>body{{font-family:sans-serif;max-width:28em;margin:3em auto}}
label{{display:block;margin:.6em 0}}
input{{width:100%;padding:.3em}}.error{{color:#a00}}.done{{color:#070}}</style></head>
<body><h1>Enter code</h1><p>patwarden emulator &mdash; Microsoft Entra ID device sign-in.</p>
{message}
<form method="post" action="{action}">
<label>Code <input name="user_code" value="{user_code}" autocomplete="off" required></label>
<label>Username <input name="username" value="{username}" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button name="action" value="approve">Sign in and approve</button>
<button name="action" value="deny" formnovalidate>Decline</button>
</form></body></html>
"""


def _render(
    emu: Emulator, *, message: str = "", user_code: str = "", username: str = "", status: int = 200
) -> HTMLResponse:
    page = _PAGE.format(
        message=message,
        action=f"{emu.base_url}/devicelogin",
        user_code=html.escape(user_code),
        username=html.escape(username),
    )
    return HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})


def _error(text: str) -> str:
    return f'<p class="error">{html.escape(text)}</p>'


def routes(emu: Emulator) -> list[BaseRoute]:
    """``GET``/``POST /devicelogin``."""

    async def show(request: Request) -> Response:
        return _render(emu, user_code=request.query_params.get("otc", ""))

    async def submit(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        user_code = form.get("user_code", "").strip().upper()
        username = form.get("username", "").strip()
        codes = entra_state(emu).device_codes
        record = codes.by_user_code(user_code) if user_code else None
        if record is None or record.status != "pending":
            state = "expired" if record and record.status == "expired" else "not valid"
            return _render(
                emu, message=_error(f"That code is {state}."), username=username, status=400
            )
        if form.get("action") == "deny":
            codes.decide(user_code=user_code, approve=False, user_oid=None)
            return _render(emu, message='<p class="done">You declined the sign-in request.</p>')
        user = emu.directory.user_by_upn(username) if username else None
        if user is None or user.removed or not user.check_password(form.get("password", "")):
            return _render(
                emu,
                message=_error("Your account or password is incorrect."),
                user_code=user_code,
                username=username,
                status=400,
            )
        if not user.enabled:
            return _render(
                emu,
                message=_error("Your account has been locked. Contact your support person."),
                user_code=user_code,
                status=400,
            )
        codes.decide(user_code=user_code, approve=True, user_oid=user.oid)
        note_identity(request, user.upn)
        app = emu.directory.app(record.client_id)
        name = app.display_name if app else record.client_id
        return _render(
            emu,
            message=f'<p class="done">You have signed in to the {html.escape(name)} application on '
            "your device. You may now close this window.</p>",
        )

    return [
        Route("/devicelogin", show, methods=["GET"]),
        Route("/devicelogin", submit, methods=["POST"]),
    ]
