"""Emulated Entra ID admin API: users, and workload identity federation end to end."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import WorkloadIdentityCredential

from tests.conftest import RunningEmulator
from tests.emulator.entra_support import new_user, sign_in
from tests.support.device_codes import poll, start_device_code
from tests.support.tokens import ADO, claims, post_token, public_client_id


def test_users_can_be_added_listed_and_changed(emu: RunningEmulator) -> None:
    username = f"new-{uuid.uuid4().hex[:8]}@contoso.example"
    created = emu.admin(
        "POST",
        "/users",
        json={"username": username, "display_name": "New One", "mfa_required": False},
    )
    assert created.status_code == 201
    assert created.json()["password"]  # generated, since none was given
    listed = {user["username"]: user for user in emu.admin("GET", "/users").json()["value"]}
    assert listed[username]["mfa_required"] is False
    assert listed[username]["enabled"] is True
    assert "password" not in listed[username]

    patched = emu.admin(
        "PATCH", f"/users/{username}", json={"enabled": False, "org_admin": True}
    ).json()
    assert (patched["enabled"], patched["org_admin"], patched["mfa_required"]) == (
        False,
        True,
        False,
    )


def test_admin_user_errors(emu: RunningEmulator) -> None:
    username, _ = new_user(emu)
    with emu.http() as client:
        duplicate = client.post(f"{emu['admin_url']}/users", json={"username": username})
        missing = client.patch(f"{emu['admin_url']}/users/nobody@x.example", json={})
        bad_flag = client.patch(f"{emu['admin_url']}/users/{username}", json={"enabled": "no"})
    assert duplicate.status_code == 409
    assert missing.status_code == 404
    assert bad_flag.status_code == 400


def test_removed_user_is_unknown_to_ropc(emu: RunningEmulator) -> None:
    username, password = new_user(emu, mfa_required=False)
    emu.admin("PATCH", f"/users/{username}", json={"removed": True})
    response = post_token(
        emu,
        {
            "grant_type": "password",
            "client_id": emu["identities"]["public_client"]["client_id"],
            "username": username,
            "password": password,
            "scope": f"{ADO}/.default",
        },
    )
    assert response.json()["error_codes"] == [50034]


def test_reset_forgets_sessions_codes_users_and_policies(emu: RunningEmulator) -> None:
    username, _ = new_user(emu)
    session = sign_in(emu, username)
    refresh_token = session.cached_refresh_token()
    rotator = emu["identities"]["rotator"]["username"]
    emu.admin(
        "POST",
        "/users/require-mfa",
        json={"username": emu["identities"]["legacy_user"]["username"]},
    )
    pending = start_device_code(emu)

    emu.reset()

    assert username not in [u["username"] for u in emu.admin("GET", "/users").json()["value"]]
    assert emu.admin("GET", "/device-codes").json()["value"] == []
    assert poll(emu, pending["device_code"]).json()["error"] == "bad_verification_code"
    refused = post_token(
        emu,
        {
            "grant_type": "refresh_token",
            "client_id": public_client_id(emu),
            "refresh_token": refresh_token,
            "scope": f"{ADO}/.default offline_access",
        },
    )
    assert refused.json()["error"] == "invalid_grant"
    users = {u["username"]: u for u in emu.admin("GET", "/users").json()["value"]}
    assert users[emu["identities"]["legacy_user"]["username"]]["mfa_required"] is False
    assert users[rotator]["mfa_required"] is True


def _federate(emu: RunningEmulator, subject: str) -> None:
    emu.admin(
        "POST",
        "/federated-credentials",
        json={
            "client_id": emu["identities"]["service_principal"]["client_id"],
            "issuer": f"{emu['authority_host']}/oidc",
            "subject": subject,
            "audience": "api://AzureADTokenExchange",
        },
    )


def _token_file(emu: RunningEmulator, directory: Path, subject: str) -> Path:
    minted = emu.admin(
        "POST",
        "/federated-tokens",
        json={"subject": subject, "audience": "api://AzureADTokenExchange"},
    ).json()
    path = directory / "token"
    path.write_text(minted["token"])
    return path


def _workload_credential(emu: RunningEmulator, token_file: Path) -> WorkloadIdentityCredential:
    return WorkloadIdentityCredential(
        tenant_id=emu["tenant_id"],
        client_id=emu["identities"]["service_principal"]["client_id"],
        token_file_path=str(token_file),
        authority=emu["authority_host"],
        disable_instance_discovery=True,
        connection_verify=emu.ca_bundle,
    )


def test_workload_identity_with_a_matching_federated_credential(
    emu: RunningEmulator, tmp_path: Path
) -> None:
    subject = f"system:serviceaccount:patwarden:{uuid.uuid4().hex[:6]}"
    _federate(emu, subject)
    credential = _workload_credential(emu, _token_file(emu, tmp_path, subject))
    token = claims(credential.get_token(f"{ADO}/.default").token)
    assert token["idtyp"] == "app"
    assert token["appid"] == emu["identities"]["service_principal"]["client_id"]
    with emu.http() as client:
        discovery = client.get(f"{emu['authority_host']}/oidc/.well-known/openid-configuration")
    assert discovery.json()["issuer"] == f"{emu['authority_host']}/oidc"


def test_workload_identity_without_a_matching_credential_is_aadsts70021(
    emu: RunningEmulator, tmp_path: Path
) -> None:
    _federate(emu, "system:serviceaccount:patwarden:registered")
    token_file = _token_file(emu, tmp_path, "system:serviceaccount:other:intruder")
    with pytest.raises(ClientAuthenticationError) as caught:
        _workload_credential(emu, token_file).get_token(f"{ADO}/.default")
    assert "AADSTS70021" in str(caught.value)
