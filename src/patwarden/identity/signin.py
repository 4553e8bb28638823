"""The interactive part of the rotator's sign-in: device code or browser, and what it leaves.

:func:`interactive_result` runs one of the two flows through MSAL and returns MSAL's answer;
:func:`login_failure` turns a refusal into an error naming the cause and the fix (a device-code
request blocked by Conditional Access suggests ``--browser``); :func:`account_record` builds the
non-secret record kept with the cache: who signed in, on which machine, how and when.
"""

from __future__ import annotations

import base64
import json
import platform
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from patwarden.errors import DOCS, AuthError
from patwarden.identity.aadsts import DEVICE_CODE_REQUEST, KNOWN_CODES, explain
from patwarden.identity.account import AccountRecord
from patwarden.identity.http import entra_call

if TYPE_CHECKING:
    from patwarden.identity.browser import BrowserOptions  # http.server: only for --browser

DEVICE_CODE = "device_code"
BROWSER = "browser"
_DEVICE_FLOW_REFUSALS = {
    "authorization_declined": "the sign-in was declined in the browser",
    "expired_token": "the code expired before the sign-in was completed",
    "bad_verification_code": "Entra did not recognise the device code",
    "timeout": "no answer came back from the browser in time",
    "access_denied": "the sign-in was refused",
}


def interactive_result(
    app: Any,
    *,
    authority: str,
    scopes: Sequence[str],
    login_hint: str | None,
    browser: BrowserOptions | None,
    out: TextIO,
    timeout: float | None,
    name: str,
) -> dict[str, Any]:
    """Sign in interactively (browser when *browser* is given, else device code).

    Raises:
        AuthError: Entra refused to start the flow (e.g. the device-code flow is blocked).
    """
    if browser is not None:
        with entra_call(authority=authority, action="complete the browser sign-in"):
            from patwarden.identity.browser import sign_in_with_browser

            return sign_in_with_browser(
                app,
                scopes=scopes,
                login_hint=login_hint,
                options=browser,
                out=out,
                timeout=timeout,
            )
    with entra_call(authority=authority, action="start a device-code sign-in"):
        flow = app.initiate_device_flow(scopes=list(scopes))
    if "user_code" not in flow:
        raise login_failure(name, flow, context=DEVICE_CODE_REQUEST)
    print(flow["message"], file=out, flush=True)
    if timeout is not None:
        # MSAL polls until expires_at by time.time(), so the deadline uses that clock.
        flow["expires_at"] = min(float(flow.get("expires_at", 0)), time.time() + timeout)
    with entra_call(authority=authority, action="complete the device-code sign-in"):
        result: dict[str, Any] = app.acquire_token_by_device_flow(flow)
    return result


def login_failure(name: str, result: dict[str, Any], *, context: str | None = None) -> AuthError:
    """The error for a refused or abandoned interactive sign-in of identity *name*."""
    error = str(result.get("error", "unknown_error"))
    explanation = explain(result, context=context)
    specific = explanation.row is not None or explanation.code in KNOWN_CODES
    if error in _DEVICE_FLOW_REFUSALS and not specific:
        code = (
            f" (AADSTS{explanation.code})" if explanation.code and error == "access_denied" else ""
        )
        return AuthError(
            f"login of identity {name!r} failed: {_DEVICE_FLOW_REFUSALS[error]}{code}",
            hint=(
                f"run `patwarden login --identity {name}` again and finish within the time shown"
            ),
        )
    return AuthError(
        f"login of identity {name!r} failed: {explanation.cause}",
        hint=explanation.fix.format(identity=name),
        docs=explanation.anchor,
    )


def account_record(
    app: Any,
    result: dict[str, Any],
    *,
    name: str,
    client_id: str,
    authority: str,
    tenant_id: str,
    expected_username: str | None,
    method: str,
    now: datetime,
) -> AccountRecord:
    """The account record of a successful sign-in (checks it is the expected user).

    Raises:
        AuthError: no account came back, or another user signed in.
    """
    claims = result.get("id_token_claims") or {}
    username = str(claims.get("preferred_username") or claims.get("upn") or "")
    accounts = app.get_accounts(username=username or None) or app.get_accounts()
    if not accounts:
        raise AuthError(
            f"login of identity {name!r}: Entra returned no account (no id_token/client_info)",
            hint=(
                "check that the app registration is a public client with 'Allow public client "
                "flows' on"
            ),
            docs=f"{DOCS}/identities.md#one-time-entra-setup",
        )
    account = accounts[0]
    username = username or str(account.get("username", ""))
    if expected_username and username.lower() != expected_username.lower():
        raise AuthError(
            f"login of identity {name!r} signed in as {username}, but the config expects "
            f"{expected_username}",
            hint=(
                f"run `patwarden login --identity {name}` again and sign in as "
                f"{expected_username} (use a private browser window so your own account is not "
                "picked)"
            ),
        )
    return AccountRecord(
        home_account_id=str(account["home_account_id"]),
        username=username,
        tenant_id=str(claims.get("tid") or tenant_id),
        client_id=client_id,
        authority=authority,
        logged_in_at=now,
        last_renewed_at=now,
        signed_in_on=platform.node() or "unknown host",
        sign_in_method=method,
    )


def origin(record: AccountRecord) -> str:
    """Which machine signed in, how and when (and where it was handed over), for doctor/status."""
    how = {BROWSER: "with the browser", DEVICE_CODE: "with a device code"}.get(
        record.sign_in_method, "interactively"
    )
    where = record.signed_in_on or "an unrecorded machine"
    text = f"signed in on {where} {how} at {record.logged_in_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    if record.handed_over_to and record.handed_over_at is not None:
        at = record.handed_over_at.astimezone(UTC)
        text += f", handed over to {record.handed_over_to} at {at:%Y-%m-%d %H:%M} UTC"
    return text


def token_scopes(access_token: str) -> tuple[str, ...]:
    """The delegated scopes (``scp``) an access token carries; () when it is not a readable JWT.

    Only reads the payload (no signature check): it reports, it does not authorise.
    """
    parts = access_token.split(".")
    if len(parts) != 3:
        return ()
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        scp = json.loads(payload).get("scp", "")
    except (ValueError, AttributeError):
        return ()
    return tuple(str(scp).split()) if isinstance(scp, str) else ()
