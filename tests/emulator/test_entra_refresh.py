"""Emulated Entra ID: refresh tokens (rotation, revocation, expiry, CA policies) and ROPC."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from tests.conftest import RunningEmulator
from tests.emulator.entra_support import new_user, sign_in
from tests.support.tokens import ADO, ADO_PATS, claims, post_token, public_client_id


def _redeem(
    emu: RunningEmulator, refresh_token: str, scope: str | None = None
) -> dict[str, object]:
    response = post_token(
        emu,
        {
            "grant_type": "refresh_token",
            "client_id": public_client_id(emu),
            "refresh_token": refresh_token,
            "scope": scope or " ".join([*ADO_PATS, "offline_access"]),
        },
    )
    body: dict[str, object] = response.json()
    body["status"] = response.status_code
    return body


def test_msal_force_refresh_returns_a_new_refresh_token(emu: RunningEmulator) -> None:
    username, _ = new_user(emu)
    session = sign_in(emu, username)
    first = session.cached_refresh_token()

    result = session.refresh()

    assert "access_token" in result, result
    assert claims(result["access_token"])["upn"] == username
    second = session.cached_refresh_token()
    assert second != first
    # Entra does not revoke the redeemed token: both stay usable.
    assert _redeem(emu, first)["status"] == 200
    assert _redeem(emu, second)["status"] == 200


def test_refresh_keeps_the_interactive_sign_in_time(emu: RunningEmulator) -> None:
    username, _ = new_user(emu)
    session = sign_in(emu, username)
    signed_in = claims(session.result["access_token"])["auth_time"]
    time.sleep(1.1)
    refreshed = claims(session.refresh()["access_token"])
    assert refreshed["auth_time"] == signed_in
    assert refreshed["iat"] > signed_in


def test_refresh_for_another_consented_scope_and_consent_error(emu: RunningEmulator) -> None:
    username, _ = new_user(emu)
    token = sign_in(emu, username).cached_refresh_token()
    other = _redeem(emu, token, scope=f"{ADO}/vso.graph offline_access")
    assert other["status"] == 200
    assert claims(str(other["access_token"]))["scp"] == "vso.graph"
    refused = _redeem(emu, token, scope=f"{ADO}/vso.code_full offline_access")
    assert (refused["error"], refused["error_codes"]) == ("invalid_grant", [65001])


def test_refresh_after_admin_revoke_is_aadsts50173(emu: RunningEmulator) -> None:
    username, _ = new_user(emu)
    session = sign_in(emu, username)
    revoked = emu.admin("POST", "/refresh-tokens/revoke", json={"username": username}).json()
    assert revoked["revoked"] == 1
    result = session.refresh()
    assert result["error"] == "invalid_grant"
    assert 50173 in result["error_codes"]


def test_refresh_after_admin_expire_is_aadsts700082(emu: RunningEmulator) -> None:
    username, _ = new_user(emu)
    session = sign_in(emu, username)
    emu.admin("POST", "/refresh-tokens/expire", json={"username": username})
    result = session.refresh()
    assert result["error"] == "invalid_grant"
    assert 700082 in result["error_codes"]


def test_sign_in_frequency_is_aadsts70043(emu: RunningEmulator) -> None:
    username, _ = new_user(emu)
    session = sign_in(emu, username)
    emu.admin("PUT", "/sign-in-frequency", json={"username": username, "seconds": 3600})
    assert "access_token" in session.refresh()

    emu.admin("PUT", "/sign-in-frequency", json={"username": username, "seconds": 0})
    time.sleep(0.05)
    result = session.refresh()
    assert result["error"] == "invalid_grant"
    assert 70043 in result["error_codes"]

    emu.admin("PUT", "/sign-in-frequency", json={"username": username, "seconds": None})
    # MSAL throttles a repeated failing request for a minute, so ask over raw HTTP.
    assert _redeem(emu, session.cached_refresh_token())["status"] == 200


def test_require_mfa_asks_for_interaction_until_the_next_sign_in(emu: RunningEmulator) -> None:
    username, _ = new_user(emu, mfa_required=False)
    session = sign_in(emu, username)
    emu.admin("POST", "/users/require-mfa", json={"username": username})

    result = session.refresh()

    assert result["error"] == "interaction_required"
    assert 50076 in result["error_codes"]
    assert result["suberror"] == "basic_action"
    assert "capolids" in result["claims"]
    fresh = sign_in(emu, username)
    assert "access_token" in fresh.refresh()


def test_disabled_user_cannot_refresh(emu: RunningEmulator) -> None:
    username, _ = new_user(emu)
    session = sign_in(emu, username)
    emu.admin("PATCH", f"/users/{username}", json={"enabled": False})
    assert 50057 in session.refresh()["error_codes"]


def test_unknown_refresh_token_is_invalid_grant(emu: RunningEmulator) -> None:
    body = _redeem(emu, "0.Anot-a-token")
    assert (body["status"], body["error"]) == (400, "invalid_grant")


# ROPC -----------------------------------------------------------------------------------------
def _ropc(emu: RunningEmulator, username: str, password: str) -> dict[str, object]:
    response = post_token(
        emu,
        {
            "grant_type": "password",
            "client_id": public_client_id(emu),
            "username": username,
            "password": password,
            "scope": " ".join([*ADO_PATS, "offline_access", "openid", "profile"]),
            "client_info": "1",
        },
    )
    body: dict[str, object] = response.json()
    body["status"] = response.status_code
    return body


def test_ropc_for_an_mfa_user_is_aadsts50076(emu: RunningEmulator) -> None:
    username, password = new_user(emu)
    body = _ropc(emu, username, password)
    assert (body["status"], body["error"], body["error_codes"]) == (400, "invalid_grant", [50076])


def test_ropc_for_the_rotator_is_aadsts50076(emu: RunningEmulator) -> None:
    # The ready file does not publish the rotator's password; the emulator's state does.
    with sqlite3.connect(Path(emu.state_dir) / "emulator.db") as db:
        (password,) = db.execute("SELECT value FROM meta WHERE key = 'rotator_password'").fetchone()
    rotator = emu["identities"]["rotator"]["username"]
    body = _ropc(emu, rotator, password)
    assert (body["status"], body["error"], body["error_codes"]) == (400, "invalid_grant", [50076])
    assert _ropc(emu, rotator, "wrong-password")["error_codes"] == [50126]


def test_ropc_for_the_legacy_user_succeeds(emu: RunningEmulator) -> None:
    legacy = emu["identities"]["legacy_user"]
    body = _ropc(emu, legacy["username"], legacy["password"])
    assert body["status"] == 200, body
    token = claims(str(body["access_token"]))
    assert token["upn"] == legacy["username"]
    assert token["amr"] == ["pwd"]
    assert {"vso.pats", "vso.pats_manage"} <= set(token["scp"].split())
    assert body["refresh_token"]


def test_ropc_wrong_password_is_aadsts50126(emu: RunningEmulator) -> None:
    legacy = emu["identities"]["legacy_user"]
    body = _ropc(emu, legacy["username"], "not-it")
    assert (body["error"], body["error_codes"]) == ("invalid_grant", [50126])


def test_ropc_unknown_user_is_aadsts50034(emu: RunningEmulator) -> None:
    body = _ropc(emu, "nobody@contoso.example", "x")
    assert body["error_codes"] == [50034]


def test_legacy_session_needs_mfa_once_required(emu: RunningEmulator) -> None:
    username, password = new_user(emu, mfa_required=False)
    refresh_token = str(_ropc(emu, username, password)["refresh_token"])
    assert _redeem(emu, refresh_token)["status"] == 200
    emu.admin("PATCH", f"/users/{username}", json={"mfa_required": True})
    refused = _redeem(emu, refresh_token)
    assert (refused["error"], refused["error_codes"]) == ("interaction_required", [50076])
    assert _ropc(emu, username, password)["error_codes"] == [50076]
