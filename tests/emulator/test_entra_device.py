"""Emulated Entra ID: the device-code flow with azure-identity, MSAL and raw HTTP."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from azure.identity import DeviceCodeCredential

from tests.conftest import RunningEmulator, start_emulator, stop_emulator
from tests.emulator.entra_support import new_user
from tests.support.device_codes import approve, poll, start_device_code
from tests.support.tokens import ADO, ADO_PATS, claims, public_client_id


def test_device_code_credential_approved_through_the_admin_api(emu: RunningEmulator) -> None:
    prompts: list[str] = []

    def prompt(verification_uri: str, user_code: str, expires_on: datetime) -> None:
        prompts.append(verification_uri)
        approve(emu, user_code)

    credential = DeviceCodeCredential(
        client_id=public_client_id(emu),
        tenant_id=emu["tenant_id"],
        authority=emu["authority_host"],
        disable_instance_discovery=True,
        connection_verify=emu.ca_bundle,
        prompt_callback=prompt,
    )
    record = credential.authenticate(scopes=[f"{ADO}/.default"])
    token = claims(credential.get_token(*ADO_PATS).token)

    assert prompts == [f"{emu['authority_host']}/devicelogin"]
    assert record.username == emu["identities"]["rotator"]["username"]
    assert record.tenant_id == emu["tenant_id"]
    assert {"vso.pats", "vso.pats_manage"} <= set(token["scp"].split())
    assert token["idtyp"] == "user"
    assert token["aud"] == ADO
    assert token["oid"] == emu["identities"]["rotator"]["object_id"]
    assert token["upn"] == emu["identities"]["rotator"]["username"]
    assert "roles" not in token


def test_device_code_response_shape(emu: RunningEmulator) -> None:
    flow = start_device_code(emu)
    assert flow["verification_uri"] == f"{emu['authority_host']}/devicelogin"
    assert flow["expires_in"] == 900
    assert flow["interval"] == 5
    assert flow["user_code"] in flow["message"]
    assert "verification_uri_complete" not in flow


def test_admin_lists_pending_codes_with_client_and_scopes(emu: RunningEmulator) -> None:
    flow = start_device_code(emu)
    listed = emu.admin("GET", "/device-codes").json()["value"]
    mine = [code for code in listed if code["user_code"] == flow["user_code"]]
    assert mine[0]["client_id"] == public_client_id(emu)
    assert set(ADO_PATS) <= set(mine[0]["scopes"])
    assert "device_code" not in mine[0]

    approve(emu, flow["user_code"])
    listed = emu.admin("GET", "/device-codes").json()["value"]
    assert flow["user_code"] not in [code["user_code"] for code in listed]


def test_polling_errors(emu: RunningEmulator) -> None:
    pending = start_device_code(emu)
    first = poll(emu, pending["device_code"])
    assert (first.status_code, first.json()["error"]) == (400, "authorization_pending")
    assert first.json()["error_codes"] == [70016]

    emu.admin("POST", "/device-codes/deny", json={"user_code": pending["user_code"]})
    assert poll(emu, pending["device_code"]).json()["error"] == "authorization_declined"

    expiring = start_device_code(emu)
    emu.admin("POST", "/device-codes/expire", json={"user_code": expiring["user_code"]})
    expired = poll(emu, expiring["device_code"]).json()
    assert (expired["error"], expired["error_codes"]) == ("expired_token", [70019])

    assert poll(emu, "DAQABnot-a-code").json()["error"] == "bad_verification_code"


def test_approved_code_is_redeemed_once_with_account_data(emu: RunningEmulator) -> None:
    username, _ = new_user(emu)
    flow = start_device_code(emu)
    approve(emu, flow["user_code"], username)

    response = poll(emu, flow["device_code"])
    body = response.json()
    assert response.status_code == 200, body
    user = claims(body["access_token"])
    id_token = claims(body["id_token"])
    client_info = json.loads(base64.urlsafe_b64decode(body["client_info"] + "=="))
    assert user["upn"] == username
    assert set(body["scope"].split()) == set(ADO_PATS)
    assert body["refresh_token"]
    assert body["token_type"] == "Bearer"
    assert id_token["aud"] == public_client_id(emu)
    assert id_token["iss"] == f"{emu['authority_host']}/{emu['tenant_id']}/v2.0"
    assert id_token["preferred_username"] == username
    assert id_token["oid"] == user["oid"]
    assert client_info == {"uid": user["oid"], "utid": emu["tenant_id"]}

    again = poll(emu, flow["device_code"]).json()
    assert again["error"] == "invalid_grant"


def test_approving_a_non_pending_code_is_a_conflict(emu: RunningEmulator) -> None:
    flow = start_device_code(emu)
    emu.admin("POST", "/device-codes/deny", json={"user_code": flow["user_code"]})
    with emu.http() as client:
        response = client.post(
            f"{emu['admin_url']}/device-codes/approve", json={"user_code": flow["user_code"]}
        )
    assert response.status_code == 409


def test_device_code_for_unconsented_scope_fails_with_consent_error(emu: RunningEmulator) -> None:
    flow = start_device_code(emu, scope="https://vault.azure.net/user_impersonation offline_access")
    approve(emu, flow["user_code"])
    body = poll(emu, flow["device_code"]).json()
    assert (body["error"], body["error_codes"]) == ("invalid_grant", [65001])
    assert body["suberror"] == "consent_required"


def test_disabled_user_cannot_redeem(emu: RunningEmulator) -> None:
    username, _ = new_user(emu)
    flow = start_device_code(emu)
    approve(emu, flow["user_code"], username)
    emu.admin("PATCH", f"/users/{username}", json={"enabled": False})
    body = poll(emu, flow["device_code"]).json()
    assert body["error_codes"] == [50057]


def test_a_person_approves_at_the_devicelogin_page(emu: RunningEmulator) -> None:
    username, password = new_user(emu)
    flow = start_device_code(emu)
    with emu.http() as client:
        page = client.get(flow["verification_uri"])
        wrong = client.post(
            flow["verification_uri"],
            data={"user_code": flow["user_code"], "username": username, "password": "nope"},
        )
        right = client.post(
            flow["verification_uri"],
            data={
                "user_code": flow["user_code"].lower(),
                "username": username,
                "password": password,
                "action": "approve",
            },
        )
    assert page.status_code == 200
    assert 'name="user_code"' in page.text
    assert wrong.status_code == 400
    assert password not in right.text
    assert right.status_code == 200, right.text
    assert "You have signed in" in right.text
    assert claims(poll(emu, flow["device_code"]).json()["access_token"])["upn"] == username


def test_a_person_declines_at_the_devicelogin_page(emu: RunningEmulator) -> None:
    flow = start_device_code(emu)
    with emu.http() as client:
        client.post(
            flow["verification_uri"], data={"user_code": flow["user_code"], "action": "deny"}
        )
    assert poll(emu, flow["device_code"]).json()["error"] == "authorization_declined"


@pytest.fixture(scope="module")
def auto_approving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    running = start_emulator(tmp_path_factory.mktemp("auto"), "--auto-approve-device-codes")
    try:
        yield running
    finally:
        stop_emulator(running)


def test_auto_approve_signs_in_as_the_rotator(auto_approving: RunningEmulator) -> None:
    flow = start_device_code(auto_approving)
    body = poll(auto_approving, flow["device_code"]).json()
    assert (
        claims(body["access_token"])["upn"] == (auto_approving["identities"]["rotator"]["username"])
    )


def test_state_dir_holds_no_token_in_clear(emu: RunningEmulator) -> None:
    username, _ = new_user(emu)
    flow = start_device_code(emu)
    approve(emu, flow["user_code"], username)
    refresh_token = poll(emu, flow["device_code"]).json()["refresh_token"]
    database = Path(emu.state_dir) / "emulator.db"
    stored = b"".join(
        path.read_bytes() for path in database.parent.glob("emulator.db*") if path.is_file()
    )
    assert refresh_token.encode() not in stored
    assert flow["device_code"].encode() not in stored
