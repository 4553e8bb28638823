"""Variable groups (contract §9.1) and service endpoints (§9.2) on the emulated Azure DevOps."""

from __future__ import annotations

from typing import Any

from tests.emulator.devops_support import Ado
from tests.support.pats import basic, bearer

API = {"api-version": "7.1"}


def _group(ado: Ado) -> dict[str, Any]:
    group: dict[str, Any] = ado.admin(
        "POST",
        "/variable-groups",
        json={
            "project": "infra",
            "name": "gitops",
            "variables": {
                "FLUX_PAT": {"value": "old-flux", "isSecret": True},
                "OTHER_SECRET": {"value": "keep-me", "isSecret": True},
                "PLAIN": {"value": "visible"},
            },
        },
    )
    return group


def test_variable_group_reads_hide_secrets(ado: Ado) -> None:
    group = _group(ado)
    headers = bearer(ado.sp_token())
    got = ado.client.get(
        ado.devops(f"infra/_apis/distributedtask/variablegroups/{group['id']}"),
        params=API,
        headers=headers,
    ).json()
    assert got["variables"]["FLUX_PAT"] == {"value": None, "isSecret": True}
    assert got["variables"]["PLAIN"] == {"value": "visible"}
    listed = ado.client.get(
        ado.devops("infra/_apis/distributedtask/variablegroups"),
        params={**API, "groupName": "git*"},
        headers=headers,
    ).json()
    assert [g["id"] for g in listed["value"]] == [group["id"]]
    assert "keep-me" not in str(listed)


def test_variable_group_put_replaces_variables_and_keeps_null_secrets(ado: Ado) -> None:
    group = _group(ado)
    url = ado.devops(f"_apis/distributedtask/variablegroups/{group['id']}")
    pat = ado.create_pat(scope="vso.variablegroups_manage")["token"]
    body = {
        "name": "gitops",
        "type": "Vsts",
        "variables": {
            "FLUX_PAT": {"value": "new-flux", "isSecret": True},
            "OTHER_SECRET": {"value": None, "isSecret": True},
        },
        "variableGroupProjectReferences": group["variableGroupProjectReferences"],
    }
    response = ado.client.put(url, params=API, json=body, headers=basic(pat))
    assert response.status_code == 200, response.text
    assert set(response.json()["variables"]) == {"FLUX_PAT", "OTHER_SECRET"}
    stored = ado.admin("GET", f"/variable-groups/{group['id']}/secrets")["variables"]
    assert stored["FLUX_PAT"]["value"] == "new-flux"
    assert stored["OTHER_SECRET"]["value"] == "keep-me"
    assert "PLAIN" not in stored


def test_variable_group_scopes(ado: Ado) -> None:
    group = _group(ado)
    get_url = ado.devops(f"infra/_apis/distributedtask/variablegroups/{group['id']}")
    put_url = ado.devops(f"_apis/distributedtask/variablegroups/{group['id']}")
    reader = basic(ado.create_pat(scope="vso.variablegroups_read")["token"])
    assert ado.client.get(get_url, params=API, headers=reader).status_code == 200
    refused = ado.client.put(put_url, params=API, json={"variables": {}}, headers=reader)
    assert refused.status_code == 401
    code_only = basic(ado.create_pat(scope="vso.code")["token"])
    assert ado.client.get(get_url, params=API, headers=code_only).status_code == 401
    missing = ado.client.get(
        ado.devops("infra/_apis/distributedtask/variablegroups/999"), params=API, headers=reader
    )
    assert missing.status_code == 404
    no_project = ado.client.get(
        ado.devops(f"nowhere/_apis/distributedtask/variablegroups/{group['id']}"),
        params=API,
        headers=reader,
    )
    assert no_project.json()["message"].startswith("TF200016")


def _endpoint(ado: Ado) -> dict[str, Any]:
    endpoint: dict[str, Any] = ado.admin(
        "POST",
        "/service-endpoints",
        json={
            "project": "infra",
            "name": "azure-repos",
            "type": "externaltfs",
            "scheme": "Token",
            "parameters": {"apitoken": "old-pat"},
            "url": "https://dev.azure.com/contoso",
        },
    )
    return endpoint


def test_service_endpoint_put_resets_a_secret_sent_as_null_by_default(ado: Ado) -> None:
    # terraform-provider-azuredevops issues 550 and 719: a PUT that sends the password as null
    # (as read) unsets it on the real service.
    generic: dict[str, Any] = ado.admin(
        "POST",
        "/service-endpoints",
        json={
            "project": "infra",
            "name": "generic",
            "type": "generic",
            "scheme": "UsernamePassword",
            "parameters": {"username": "bot", "password": "old-secret"},
        },
    )
    headers = bearer(ado.sp_token())
    get_url = ado.devops(f"infra/_apis/serviceendpoint/endpoints/{generic['id']}")
    current = ado.client.get(get_url, params=API, headers=headers).json()
    current["description"] = "changed"
    put_url = ado.devops(f"_apis/serviceendpoint/endpoints/{generic['id']}")
    updated = ado.client.put(put_url, params=API, json=current, headers=headers)
    assert updated.status_code == 200, updated.text
    assert updated.json()["authorization"]["parameters"] == {"username": "bot", "password": None}
    stored = ado.admin("GET", f"/service-endpoints/{generic['id']}/secrets")["parameters"]
    assert stored == {"username": "bot", "password": None}


def test_service_endpoint_hides_secrets_and_replaces_only_the_sent_one(ado: Ado) -> None:
    policies = ado.set_policies(service_endpoint_null_parameter="keep")
    assert policies["service_endpoint_null_parameter"] == "keep"
    generic: dict[str, Any] = ado.admin(
        "POST",
        "/service-endpoints",
        json={
            "project": "infra",
            "name": "generic",
            "type": "generic",
            "scheme": "UsernamePassword",
            "parameters": {"username": "bot", "password": "old-secret"},
        },
    )
    headers = bearer(ado.sp_token())
    get_url = ado.devops(f"infra/_apis/serviceendpoint/endpoints/{generic['id']}")
    current = ado.client.get(get_url, params=API, headers=headers).json()
    assert current["authorization"]["parameters"] == {"username": "bot", "password": None}
    current["authorization"]["parameters"]["username"] = "bot2"
    put_url = ado.devops(f"_apis/serviceendpoint/endpoints/{generic['id']}")
    updated = ado.client.put(put_url, params=API, json=current, headers=headers)
    assert updated.status_code == 200, updated.text
    stored = ado.admin("GET", f"/service-endpoints/{generic['id']}/secrets")["parameters"]
    assert stored == {"username": "bot2", "password": "old-secret"}

    tfs = _endpoint(ado)
    tfs["authorization"]["parameters"]["apitoken"] = "new-pat"
    put_tfs = ado.devops(f"_apis/serviceendpoint/endpoints/{tfs['id']}")
    response = ado.client.put(put_tfs, params=API, json=tfs, headers=headers)
    assert response.json()["authorization"]["parameters"] == {"apitoken": None}
    stored = ado.admin("GET", f"/service-endpoints/{tfs['id']}/secrets")["parameters"]
    assert stored == {"apitoken": "new-pat"}


def test_service_endpoint_scopes(ado: Ado) -> None:
    endpoint = _endpoint(ado)
    get_url = ado.devops(f"infra/_apis/serviceendpoint/endpoints/{endpoint['id']}")
    put_url = ado.devops(f"_apis/serviceendpoint/endpoints/{endpoint['id']}")
    reader = basic(ado.create_pat(scope="vso.serviceendpoint")["token"])
    manager = basic(ado.create_pat(scope="vso.serviceendpoint_manage")["token"])
    assert ado.client.get(get_url, params=API, headers=reader).status_code == 200
    assert ado.client.put(put_url, params=API, json=endpoint, headers=reader).status_code == 401
    assert ado.client.put(put_url, params=API, json=endpoint, headers=manager).status_code == 200
    missing = ado.client.get(get_url, headers=reader)
    assert missing.json()["typeKey"] == "VssVersionNotSpecifiedException"
