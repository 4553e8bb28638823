"""The emulated Key Vault, driven by the real ``SecretClient`` (and raw httpx for exact shapes)."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.keyvault.secrets import SecretClient
from azure.keyvault.secrets._shared.challenge_auth_policy import ChallengeCache

from tests.conftest import RunningEmulator
from tests.support.tokens import ADO, minted_token, sp_credential, user_credential

API = "api-version=7.5"
HEX32 = re.compile(r"^[0-9a-f]{32}$")


def secret_client(emulator: RunningEmulator, credential: Any) -> SecretClient:
    return SecretClient(
        emulator["key_vault_url"],
        credential,
        verify_challenge_resource=False,
        connection_verify=emulator.ca_bundle,
    )


@pytest.fixture
def officer(emulator: RunningEmulator) -> Iterator[SecretClient]:
    """A SecretClient as the seeded service principal (Secrets Officer by default)."""
    with sp_credential(emulator) as credential, secret_client(emulator, credential) as client:
        yield client


def raw(emulator: RunningEmulator, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """Call the vault with a Secrets Officer token and no SDK in between."""
    token = minted_token(emulator, "service_principal")
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    with emulator.http() as client:
        return client.request(method, emulator["key_vault_url"] + path, headers=headers, **kwargs)


def test_unauthenticated_request_gets_the_challenge(emulator: RunningEmulator) -> None:
    with emulator.http() as client:
        response = client.put(
            emulator["key_vault_url"] + f"/secrets/anything?{API}", headers={"Content-Length": "0"}
        )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer authorization="{emulator["authority_host"]}/{emulator["tenant_id"]}", '
        'resource="https://vault.azure.net"'
    )
    assert response.json()["error"]["code"] == "Unauthorized"
    assert response.headers["x-ms-error-code"] == "Unauthorized"


def test_secret_client_completes_the_challenge_round_trip(emulator: RunningEmulator) -> None:
    ChallengeCache.clear()
    with sp_credential(emulator) as credential, secret_client(emulator, credential) as client:
        stored = client.set_secret("round-trip", "first value")
    assert stored.value == "first value"
    log = emulator.admin("GET", "/requests").json()["requests"]
    put = "/secrets/round-trip?api-version=2026-04-01"
    token = f"/{emulator['tenant_id']}/oauth2/v2.0/token"
    calls = [(e["method"], e["path"], e["status"]) for e in log if "/.well-known/" not in e["path"]]
    assert calls == [
        ("PUT", put, 401),  # body-less probe, answered with the challenge
        ("POST", token, 200),  # token for the challenge's tenant and resource (after discovery)
        ("PUT", put, 200),
    ]
    assert log[-1]["identity"] == "patwarden-writer"


def test_a_user_token_with_a_role_works_too(emulator: RunningEmulator) -> None:
    rotator = emulator["identities"]["rotator"]
    emulator.admin(
        "PUT",
        "/key-vault/grants",
        json={"principal": rotator["object_id"], "role": "Key Vault Secrets Officer"},
    )
    ChallengeCache.clear()
    credential = user_credential(emulator)
    with secret_client(emulator, credential) as client:
        client.set_secret("by-user", "v")
    assert credential.requests == [(("https://vault.azure.net/.default",), emulator["tenant_id"])]
    log = emulator.admin("GET", "/requests").json()["requests"]
    assert log[-1]["identity"] == rotator["username"]


def test_set_get_versions_and_update_properties(
    emulator: RunningEmulator, officer: SecretClient
) -> None:
    expires = int(time.time()) + 86400
    first = officer.set_secret("pat-store", "value-1", content_type="text/plain")
    second = officer.set_secret(
        "pat-store",
        "value-2",
        tags={"authorizationId": "abc", "org": "contoso"},
        expires_on=dt.datetime.fromtimestamp(expires, dt.UTC),
    )
    assert first.properties.version != second.properties.version
    assert HEX32.match(second.properties.version or "")
    assert second.id == f"{emulator['key_vault_url']}/secrets/pat-store/{second.properties.version}"

    latest = officer.get_secret("pat-store")
    assert latest.value == "value-2"
    assert latest.properties.tags == {"authorizationId": "abc", "org": "contoso"}
    assert latest.properties.expires_on is not None
    assert int(latest.properties.expires_on.timestamp()) == expires
    older = officer.get_secret("pat-store", first.properties.version)
    assert (older.value, older.properties.content_type) == ("value-1", "text/plain")

    versions = sorted(
        (p.version for p in officer.list_properties_of_secret_versions("pat-store")),
        key=[first.properties.version, second.properties.version].index,
    )
    assert versions == [first.properties.version, second.properties.version]

    updated = officer.update_secret_properties(
        "pat-store", first.properties.version, tags={"state": "superseded"}, enabled=True
    )
    assert updated.tags == {"state": "superseded"}
    assert updated.content_type == "text/plain"
    again = officer.get_secret("pat-store", first.properties.version)
    assert again.value == "value-1"  # the value of a version never changes
    assert again.properties.tags == {"state": "superseded"}
    assert officer.get_secret("pat-store").value == "value-2"
    latest_props = officer.update_secret_properties("pat-store", content_type="application/x-pat")
    assert latest_props.version == second.properties.version
    assert officer.get_secret("pat-store").properties.content_type == "application/x-pat"


def test_secret_bundle_and_item_shapes(emulator: RunningEmulator) -> None:
    set_response = raw(
        emulator,
        "PUT",
        f"/secrets/shape?{API}",
        json={
            "value": "v",
            "contentType": "ct",
            "tags": {"a": "b"},
            "attributes": {"exp": 2000000000},
        },
    )
    assert set_response.status_code == 200
    bundle = set_response.json()
    assert set(bundle) == {"value", "id", "contentType", "attributes", "tags"}
    attributes = bundle["attributes"]
    assert attributes["enabled"] is True
    assert attributes["exp"] == 2000000000
    assert isinstance(attributes["created"], int)
    assert attributes["created"] == attributes["updated"]
    assert abs(attributes["created"] - time.time()) < 60
    assert attributes["recoveryLevel"] == "Recoverable+Purgeable"
    # The SDK asks for the latest version with a trailing slash.
    latest = raw(emulator, "GET", f"/secrets/shape/?{API}").json()
    assert latest == bundle

    listing = raw(emulator, "GET", f"/secrets?{API}").json()
    assert listing["nextLink"] is None
    assert listing["value"] == [
        {
            "id": f"{emulator['key_vault_url']}/secrets/shape",
            "contentType": "ct",
            "attributes": attributes,
            "tags": {"a": "b"},
        }
    ]


def test_version_listing_pages_with_absolute_next_links(emulator: RunningEmulator) -> None:
    for n in range(3):
        raw(emulator, "PUT", f"/secrets/paged?{API}", json={"value": f"v{n}"})
    page = raw(emulator, "GET", f"/secrets/paged/versions?{API}&maxresults=2").json()
    assert len(page["value"]) == 2
    assert all("value" not in item for item in page["value"])
    next_link = page["nextLink"]
    assert next_link.startswith(f"{emulator['key_vault_url']}/secrets/paged/versions?")
    rest = raw(emulator, "GET", next_link.removeprefix(emulator["key_vault_url"])).json()
    assert len(rest["value"]) == 1
    assert rest["nextLink"] is None
    too_many = raw(emulator, "GET", f"/secrets/paged/versions?{API}&maxresults=26")
    assert too_many.status_code == 400
    assert too_many.json()["error"]["code"] == "BadParameter"


def test_sdk_reads_every_page(officer: SecretClient) -> None:
    for n in range(27):
        officer.set_secret("many", f"v{n}")
    assert len(list(officer.list_properties_of_secret_versions("many"))) == 27
    assert [p.name for p in officer.list_properties_of_secrets()] == ["many"]


def test_missing_secret_is_a_404_in_the_key_vault_shape(
    emulator: RunningEmulator, officer: SecretClient
) -> None:
    response = raw(emulator, "GET", f"/secrets/missing/?{API}")
    assert response.status_code == 404
    assert response.headers["x-ms-error-code"] == "SecretNotFound"
    error = response.json()["error"]
    assert error["code"] == "SecretNotFound"
    assert "missing" in error["message"]
    with pytest.raises(ResourceNotFoundError):
        officer.get_secret("missing")


def test_bad_requests_are_rejected(emulator: RunningEmulator) -> None:
    no_version = raw(emulator, "GET", "/secrets/x/")
    assert no_version.status_code == 400
    assert no_version.json()["error"]["code"] == "BadParameter"
    bad_name = raw(emulator, "PUT", f"/secrets/bad_name?{API}", json={"value": "v"})
    assert bad_name.status_code == 400
    no_value = raw(emulator, "PUT", f"/secrets/ok?{API}", json={"contentType": "x"})
    assert no_value.status_code == 400
    assert emulator.admin("GET", "/key-vault/grants").status_code == 200


def test_ungranted_principal_is_forbidden_by_rbac(emulator: RunningEmulator) -> None:
    with (
        secret_client(emulator, user_credential(emulator)) as client,
        pytest.raises(HttpResponseError) as raised,
    ):
        client.get_secret("whatever")
    assert raised.value.status_code == 403
    token = minted_token(emulator)
    with emulator.http() as http:
        response = http.get(
            f"{emulator['key_vault_url']}/secrets/whatever?{API}",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 403
    assert response.headers["x-ms-error-code"] == "Forbidden"
    assert response.json()["error"]["innererror"] == {"code": "ForbiddenByRbac"}


def test_secrets_user_may_read_but_not_write(
    emulator: RunningEmulator, officer: SecretClient
) -> None:
    officer.set_secret("shared", "readable")
    rotator = emulator["identities"]["rotator"]
    emulator.admin(
        "PUT",
        "/key-vault/grants",
        json={"principal": rotator["username"], "role": "Key Vault Secrets User"},
    )
    with secret_client(emulator, user_credential(emulator)) as reader:
        assert reader.get_secret("shared").value == "readable"
        assert [p.name for p in reader.list_properties_of_secrets()] == ["shared"]
        with pytest.raises(HttpResponseError) as raised:
            reader.set_secret("shared", "overwrite")
    assert raised.value.status_code == 403
    assert officer.get_secret("shared").value == "readable"


def test_grants_admin_api(emulator: RunningEmulator) -> None:
    sp_client_id = emulator["identities"]["service_principal"]["client_id"]
    assert emulator.admin("GET", "/key-vault/grants").json()["grants"] == [
        {"principal": sp_client_id, "role": "Key Vault Secrets Officer"}
    ]
    admin_oid = emulator["identities"]["org_admin"]["object_id"]
    emulator.admin(
        "PUT",
        "/key-vault/grants",
        json={"principal": admin_oid, "role": "Key Vault Secrets Officer"},
    )
    with secret_client(emulator, user_credential(emulator, "org_admin")) as client:
        client.set_secret("by-admin", "v")
    emulator.admin("DELETE", "/key-vault/grants", json={"principal": admin_oid})
    with (
        secret_client(emulator, user_credential(emulator, "org_admin")) as client,
        pytest.raises(HttpResponseError),
    ):
        client.get_secret("by-admin")
    with emulator.http() as http:
        bad = http.put(
            emulator["admin_url"] + "/key-vault/grants", json={"principal": "x", "role": "Owner"}
        )
    assert bad.status_code == 400


def test_wrong_audience_is_challenged_again(emulator: RunningEmulator) -> None:
    token = minted_token(emulator, "service_principal", audience=ADO)
    with emulator.http() as http:
        response = http.get(
            f"{emulator['key_vault_url']}/secrets?{API}",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer authorization=")


def test_disabled_version_cannot_be_read(emulator: RunningEmulator, officer: SecretClient) -> None:
    stored = officer.set_secret("off", "v", enabled=False)
    response = raw(emulator, "GET", f"/secrets/off/{stored.properties.version}?{API}")
    assert response.status_code == 403
    assert response.json()["error"]["innererror"] == {"code": "SecretDisabled"}


def test_soft_delete_recover_and_purge(emulator: RunningEmulator, officer: SecretClient) -> None:
    officer.set_secret("doomed", "v")
    deleted = officer.begin_delete_secret("doomed").result()
    assert deleted.recovery_id == f"{emulator['key_vault_url']}/deletedsecrets/doomed"
    assert deleted.deleted_date is not None
    with pytest.raises(ResourceNotFoundError):
        officer.get_secret("doomed")
    conflict = raw(emulator, "PUT", f"/secrets/doomed?{API}", json={"value": "again"})
    assert conflict.status_code == 409
    assert conflict.json()["error"]["innererror"] == {"code": "ObjectIsDeletedButRecoverable"}
    officer.begin_recover_deleted_secret("doomed").result()
    assert officer.get_secret("doomed").value == "v"
    officer.begin_delete_secret("doomed").result()
    officer.purge_deleted_secret("doomed")
    assert officer.set_secret("doomed", "fresh").value == "fresh"


def test_admin_view_and_reset(emulator: RunningEmulator, officer: SecretClient) -> None:
    officer.set_secret("kept", "one")
    officer.set_secret("kept", "two")
    view = emulator.admin("GET", "/key-vault/secrets/kept").json()
    assert [v["value"] for v in view["versions"]] == ["one", "two"]
    emulator.admin(
        "PUT", "/key-vault/grants", json={"principal": "someone", "role": "Key Vault Secrets User"}
    )
    emulator.reset()
    with pytest.raises(ResourceNotFoundError):
        officer.get_secret("kept")
    assert len(emulator.admin("GET", "/key-vault/grants").json()["grants"]) == 1
