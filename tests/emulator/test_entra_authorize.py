"""The emulated browser sign-in: authorize pages, code redemption with PKCE, Conditional Access
switches in Entra's error shape, and CAE claims challenges on Azure DevOps."""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from patwarden_emulator.entra.codes import s256
from tests.conftest import RunningEmulator
from tests.support.browser import PASSWORD, set_rotator_password
from tests.support.device_codes import start_device_code
from tests.support.tokens import ADO, ADO_PATS, claims, post_token, public_client_id, tenant_url

REDIRECT = "http://localhost:8400"
SCOPE = " ".join([*ADO_PATS, "offline_access", "openid", "profile"])


def _form(page: str) -> tuple[str, dict[str, str]]:
    action = re.search(r'<form method="post" action="([^"]+)"', page)
    assert action is not None, page
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    return action[1], fields


def authorize_url(emu: RunningEmulator, verifier: str | None, **extra: str) -> str:
    params = {
        "client_id": public_client_id(emu),
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": SCOPE,
        "state": "s-123",
        "response_mode": "query",
        **({"code_challenge": s256(verifier), "code_challenge_method": "S256"} if verifier else {}),
        **extra,
    }
    return f"{tenant_url(emu)}/oauth2/v2.0/authorize?{urlencode(params)}"


def sign_in(emu: RunningEmulator, url: str, *, approve: bool = True) -> dict[str, list[str]]:
    """Walk the pages as the rotator; return the query the browser is sent back with."""
    username = set_rotator_password(emu)
    with emu.http() as client:
        page = client.get(url)
        assert "Pick an account" in page.text
        action, fields = _form(page.text)
        page = client.post(action, data={**fields, "username": username})
        assert "Enter password" in page.text
        action, fields = _form(page.text)
        page = client.post(action, data={**fields, "password": PASSWORD})
        if "Approve sign-in request" in page.text:  # the seeded rotator has MFA
            action, fields = _form(page.text)
            decision = "approve" if approve else "deny"
            page = client.post(action, data={**fields, "decision": decision})
    assert page.status_code == 302, page.text
    location = page.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return parse_qs(urlsplit(location).query)


def redeem(emu: RunningEmulator, code: str, verifier: str | None, **extra: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "client_id": public_client_id(emu),
        "code": code,
        "redirect_uri": REDIRECT,
        "client_info": "1",
        **({"code_verifier": verifier} if verifier else {}),
        **extra,
    }
    return post_token(emu, form)


def test_sign_in_with_mfa_then_redeem_with_the_verifier(emu: RunningEmulator) -> None:
    verifier = secrets.token_urlsafe(48)
    answer = sign_in(emu, authorize_url(emu, verifier))
    assert answer["state"] == ["s-123"]
    issued = redeem(emu, answer["code"][0], verifier)
    assert issued.status_code == 200, issued.text
    body = issued.json()
    token = claims(body["access_token"])
    assert token["amr"] == ["pwd", "mfa"]
    assert token["scp"] == "vso.pats vso.pats_manage"
    assert "refresh_token" in body
    assert "id_token" in body
    # A code is redeemed once.
    again = redeem(emu, answer["code"][0], verifier)
    assert again.json()["error_codes"] == [54005]


@pytest.mark.parametrize("verifier", [None, "a-different-verifier-of-enough-length-to-count-0123"])
def test_a_missing_or_wrong_verifier_is_refused_like_entra(
    emu: RunningEmulator, verifier: str | None
) -> None:
    answer = sign_in(emu, authorize_url(emu, secrets.token_urlsafe(48)))
    refused = redeem(emu, answer["code"][0], verifier)
    assert refused.status_code == 400
    body = refused.json()
    assert body["error"] == "invalid_grant"
    assert body["error_codes"] == [50148]
    assert body["error_description"].startswith("AADSTS50148: The code_verifier does not match")


def test_a_code_for_another_redirect_uri_is_refused(emu: RunningEmulator) -> None:
    verifier = secrets.token_urlsafe(48)
    answer = sign_in(emu, authorize_url(emu, verifier))
    refused = redeem(emu, answer["code"][0], verifier, redirect_uri="http://localhost:9999")
    assert refused.json()["error_codes"] == [70000]


def test_a_non_loopback_redirect_uri_gets_an_error_page(emu: RunningEmulator) -> None:
    url = authorize_url(emu, "v" * 43, redirect_uri="https://evil.example/callback")
    with emu.http() as client:
        page = client.get(url)
    assert page.status_code == 400
    assert "AADSTS50011" in page.text


def test_denied_mfa_goes_back_to_the_app_with_an_error(emu: RunningEmulator) -> None:
    answer = sign_in(emu, authorize_url(emu, secrets.token_urlsafe(48)), approve=False)
    assert answer["error"] == ["access_denied"]
    assert answer["error_description"][0].startswith("AADSTS500121:")
    assert "code" not in answer


def test_form_post_auto_submits_to_the_loopback(emu: RunningEmulator) -> None:
    url = authorize_url(emu, secrets.token_urlsafe(48), response_mode="form_post")
    username = set_rotator_password(emu)
    with emu.http() as client:
        page = client.get(url)
        for data in ({"username": username}, {"password": PASSWORD}, {"decision": "approve"}):
            action, fields = _form(page.text)
            page = client.post(action, data={**fields, **data})
    action, fields = _form(page.text)
    assert action == REDIRECT
    assert set(fields) == {"code", "state"}
    assert "document.forms[0].submit()" in page.text


# Conditional Access switches ------------------------------------------------------------------
def _ca(emu: RunningEmulator, **switches: Any) -> None:
    emu.admin("PUT", "/conditional-access", json=switches)


def test_blocked_device_code_flow_refuses_the_request(emu: RunningEmulator) -> None:
    _ca(emu, block_device_code=True)
    with emu.http() as client:
        response = client.post(
            f"{tenant_url(emu)}/oauth2/v2.0/devicecode",
            data={"client_id": public_client_id(emu), "scope": SCOPE},
        )
    assert response.status_code == 400
    body = response.json()
    assert body["error_codes"] == [53003]
    assert body["suberror"] == "message_only"
    assert body["error_description"].startswith("AADSTS53003: Access has been blocked by")


@pytest.mark.parametrize(
    ("switch", "code"),
    [("require_compliant_device", 53000), ("block_location", 53003), ("token_protection", 530084)],
)
def test_switches_refuse_the_browser_sign_in_back_at_the_app(
    emu: RunningEmulator, switch: str, code: int
) -> None:
    _ca(emu, **{switch: True})
    answer = sign_in(emu, authorize_url(emu, secrets.token_urlsafe(48)))
    assert answer["error"] == ["access_denied"]
    assert answer["error_description"][0].startswith(f"AADSTS{code}:")


def test_switches_apply_only_to_the_listed_users(emu: RunningEmulator) -> None:
    _ca(emu, require_compliant_device=True, users=["someone-else@contoso.example"])
    verifier = secrets.token_urlsafe(48)
    answer = sign_in(emu, authorize_url(emu, verifier))
    assert redeem(emu, answer["code"][0], verifier).status_code == 200
    assert emu.admin("GET", "/conditional-access").json()["users"] == [
        "someone-else@contoso.example"
    ]


def test_unknown_switch_is_a_clear_admin_error(emu: RunningEmulator) -> None:
    with emu.http() as client:
        response = client.put(
            emu["admin_url"] + "/conditional-access",
            json={"block_everything": True},
            headers={"Authorization": f"Bearer {emu['admin_token']}"},
        )
    assert response.status_code == 400
    assert "unknown keys: block_everything" in response.json()["message"]


def _refresh(emu: RunningEmulator, refresh_token: str) -> httpx.Response:
    return post_token(
        emu,
        {
            "grant_type": "refresh_token",
            "client_id": public_client_id(emu),
            "refresh_token": refresh_token,
            "scope": SCOPE,
        },
    )


def test_device_code_sessions_are_protocol_tracked(emu: RunningEmulator) -> None:
    flow = start_device_code(emu)
    emu.admin("POST", "/device-codes/approve", json={"user_code": flow["user_code"]})
    from tests.support.device_codes import poll

    refresh_token = poll(emu, flow["device_code"]).json()["refresh_token"]
    _ca(emu, block_device_code=True)
    refused = _refresh(emu, refresh_token).json()
    assert refused["error_codes"] == [53003]
    assert "device code" in refused["error_description"]


def test_sign_in_frequency_in_minutes(emu: RunningEmulator) -> None:
    verifier = secrets.token_urlsafe(48)
    answer = sign_in(emu, authorize_url(emu, verifier))
    refresh_token = redeem(emu, answer["code"][0], verifier).json()["refresh_token"]
    upn = emu["identities"]["rotator"]["username"]
    emu.admin("PUT", "/sign-in-frequency", json={"username": upn, "minutes": 60})
    assert _refresh(emu, refresh_token).status_code == 200
    set_to = emu.admin("PUT", "/sign-in-frequency", json={"username": upn, "minutes": 0}).json()
    assert set_to["seconds"] == 0
    time.sleep(0.01)
    assert _refresh(emu, refresh_token).json()["error_codes"] == [70043]


def test_password_reset_revokes_refresh_tokens(emu: RunningEmulator) -> None:
    verifier = secrets.token_urlsafe(48)
    answer = sign_in(emu, authorize_url(emu, verifier))
    refresh_token = redeem(emu, answer["code"][0], verifier).json()["refresh_token"]
    upn = emu["identities"]["rotator"]["username"]
    reset = emu.admin("POST", "/users/reset-password", json={"username": upn}).json()
    assert reset["revoked"] >= 1
    assert "password" in reset  # generated, returned once
    assert _refresh(emu, refresh_token).json()["error_codes"] == [50173]


# CAE on Azure DevOps --------------------------------------------------------------------------
def _cae_token(emu: RunningEmulator) -> str:
    verifier = secrets.token_urlsafe(48)
    answer = sign_in(emu, authorize_url(emu, verifier))
    capability = json.dumps({"access_token": {"xms_cc": {"values": ["CP1"]}}})
    body = redeem(emu, answer["code"][0], verifier, claims=capability).json()
    assert claims(body["access_token"])["xms_cc"] == ["CP1"]
    return str(body["access_token"])


def _list_pats(emu: RunningEmulator, token: str) -> httpx.Response:
    with emu.http() as client:
        return client.get(
            f"{emu['vssps_url']}/{emu['organization']}/_apis/tokens/pats",
            params={"api-version": "7.1-preview.1"},
            headers={"Authorization": f"Bearer {token}", "X-TFS-FedAuthRedirect": "Suppress"},
        )


def test_a_revoked_sessions_cae_token_gets_a_claims_challenge(emu: RunningEmulator) -> None:
    token = _cae_token(emu)
    assert _list_pats(emu, token).status_code == 200
    time.sleep(1.1)  # revocation in a later second than the token's iat
    upn = emu["identities"]["rotator"]["username"]
    emu.admin("POST", "/refresh-tokens/revoke", json={"username": upn})
    refused = _list_pats(emu, token)
    assert refused.status_code == 401
    header = refused.headers["www-authenticate"]
    assert 'error="insufficient_claims"' in header
    encoded = re.search(r'claims="([^"]+)"', header)
    assert encoded is not None
    challenge = json.loads(base64.b64decode(encoded[1]))
    assert challenge["access_token"]["nbf"]["essential"] is True


def test_a_token_without_the_cae_capability_keeps_working_until_it_expires(
    emu: RunningEmulator,
) -> None:
    verifier = secrets.token_urlsafe(48)
    answer = sign_in(emu, authorize_url(emu, verifier))
    token = redeem(emu, answer["code"][0], verifier).json()["access_token"]
    time.sleep(1.1)
    upn = emu["identities"]["rotator"]["username"]
    emu.admin("POST", "/refresh-tokens/revoke", json={"username": upn})
    assert _list_pats(emu, token).status_code == 200
    assert ADO in claims(token)["aud"]
