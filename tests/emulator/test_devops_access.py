"""PAT (Basic) and bearer authentication on ordinary Azure DevOps endpoints (contract §6, §7.1)."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.emulator.devops_support import Ado
from tests.support import clock
from tests.support.pats import SUPPRESS, basic, bearer


def _projects(ado: Ado, headers: dict[str, str], org: str | None = None) -> int:
    url = ado.devops("_apis/projects", org=org)
    response = ado.client.get(url, params={"api-version": "7.1", "$top": "1"}, headers=headers)
    return response.status_code


def test_connection_data_names_the_pat_owner(ado: Ado) -> None:
    pat = ado.create_pat(scope="vso.packaging")["token"]
    response = ado.client.get(ado.devops("_apis/connectionData"), headers=basic(pat))
    assert response.status_code == 200
    data = response.json()
    rotator = ado.emulator["identities"]["rotator"]
    assert data["authenticatedUser"]["id"] == rotator["object_id"]
    assert data["authorizedUser"]["properties"]["Account"]["$value"] == rotator["username"]
    assert data["instanceId"] == ado.emulator["organization_id"]
    assert data["locationServiceData"]["serviceOwner"]
    log = ado.admin("GET", "/requests")
    assert pat not in str(log)


def test_projects_needs_a_project_or_profile_scope(ado: Ado) -> None:
    for scope, expected in (
        ("vso.project", 200),
        ("vso.project_manage", 200),
        ("vso.profile", 200),
        ("app_token", 200),
        ("vso.code", 401),
    ):
        pat = ado.create_pat(scope=scope)["token"]
        assert _projects(ado, basic(pat)) == expected, scope
    refused = ado.client.get(
        ado.devops("_apis/projects"),
        params={"api-version": "7.1"},
        headers=basic(ado.create_pat(scope="vso.code")["token"]),
    )
    assert refused.json()["typeKey"] == "UnauthorizedRequestException"
    listed = ado.client.get(
        ado.devops("_apis/projects"),
        params={"api-version": "7.1"},
        headers=basic(ado.create_pat(scope="vso.project")["token"]),
    ).json()
    assert [p["name"] for p in listed["value"]] == ["infra"]


def test_expired_pat_is_401_access_check(ado: Ado) -> None:
    now = clock.now()
    expired = ado.admin_pat(
        scope="vso.project",
        validFrom=(now - dt.timedelta(days=10)).isoformat(),
        validTo=(now - dt.timedelta(days=1)).isoformat(),
    )["token"]
    response = ado.client.get(ado.devops("_apis/connectionData"), headers=basic(expired))
    assert response.status_code == 401
    body = response.json()
    assert body["typeKey"] == "AccessCheckException"
    assert body["message"] == "Access Denied: The Personal Access Token used has expired."
    assert response.headers["x-tfs-serviceerror"].startswith("Access%20Denied")


@pytest.mark.parametrize("kind", ["unknown", "revoked", "owner-disabled"])
def test_bad_pats_are_401_with_basic_realm_or_203(ado: Ado, kind: str) -> None:
    if kind == "unknown":
        pat = "x" * 84
    else:
        pat = ado.admin_pat(scope="vso.project", revoked=kind == "revoked")["token"]
    if kind == "owner-disabled":
        ado.admin("PATCH", f"/users/{ado.rotator}", json={"enabled": False})
    url = ado.devops("_apis/connectionData")
    response = ado.client.get(url, headers=basic(pat))
    assert response.status_code == 401
    assert 'Basic realm="' in response.headers["www-authenticate"]
    assert response.json()["message"].startswith("TF400813")
    unsuppressed = {"Authorization": basic(pat)["Authorization"]}
    page = ado.client.get(url, headers=unsuppressed)
    assert page.status_code == 203
    assert "<html" in page.text.lower()


def test_org_binding_and_global_pats(ado: Ado) -> None:
    ado.admin("POST", "/organizations", json={"name": "fabrikam"})
    bound = ado.create_pat(scope="vso.project")["token"]
    global_pat = ado.create_pat(scope="vso.project", allOrgs=True)["token"]
    assert _projects(ado, basic(bound)) == 200
    assert _projects(ado, basic(bound), org="fabrikam") == 401
    assert _projects(ado, basic(global_pat), org="fabrikam") == 200
    assert _projects(ado, basic(bound), org="nowhere") == 404
    ado.set_policies(disable_pat_creation=True)
    assert _projects(ado, basic(global_pat)) == 401  # the org policy also blocks global PATs
    assert _projects(ado, basic(bound)) == 200


def test_bearer_tokens_work_on_ordinary_endpoints(ado: Ado) -> None:
    assert _projects(ado, bearer(ado.user_token())) == 200
    assert _projects(ado, bearer(ado.sp_token())) == 200
    assert _projects(ado, bearer(ado.user_token(scopes="vso.pats"))) == 401
    response = ado.client.get(ado.devops("_apis/connectionData"), headers=bearer(ado.sp_token()))
    assert (
        response.json()["authenticatedUser"]["id"]
        == (ado.emulator["identities"]["service_principal"]["object_id"])
    )


def test_missing_credentials_on_ordinary_endpoints(ado: Ado) -> None:
    assert _projects(ado, SUPPRESS) == 401
    assert _projects(ado, {}) == 203
