"""Wire fidelity of the emulated Azure DevOps: list paging, identity references, route discovery,
unknown routes and required parameters, as the REST specs describe them."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.emulator.devops_support import Ado
from tests.support.pats import SUPPRESS, basic, bearer

API = {"api-version": "7.1"}
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ENVELOPE_KEYS = {"$id", "innerException", "message", "typeName", "typeKey", "errorCode", "eventId"}


def _groups(ado: Ado, *names: str) -> list[int]:
    made = [
        ado.admin(
            "POST",
            "/variable-groups",
            json={"project": "infra", "name": name, "variables": {"A": {"value": "1"}}},
        )
        for name in names
    ]
    return [int(group["id"]) for group in made]


def _list_groups(ado: Ado, **params: Any) -> Any:
    return ado.client.get(
        ado.devops("infra/_apis/distributedtask/variablegroups"),
        params={**API, **params},
        headers=bearer(ado.sp_token()),
    )


def test_variable_groups_list_newest_first_by_default_and_ascending_on_request(ado: Ado) -> None:
    ids = _groups(ado, "one", "two", "three")
    assert [g["id"] for g in _list_groups(ado).json()["value"]] == sorted(ids, reverse=True)
    ascending = _list_groups(ado, queryOrder="idAscending").json()["value"]
    assert [g["id"] for g in ascending] == sorted(ids)
    assert _list_groups(ado, queryOrder="byName").status_code == 400


def test_variable_groups_page_with_top_and_continuation_token(ado: Ado) -> None:
    ids = sorted(_groups(ado, *(f"g{i}" for i in range(5))), reverse=True)
    seen: list[int] = []
    params: dict[str, Any] = {"$top": 2}
    while True:
        response = _list_groups(ado, **params)
        assert response.status_code == 200, response.text
        page = [g["id"] for g in response.json()["value"]]
        assert len(page) <= 2
        seen += page
        following = response.headers.get("x-ms-continuationtoken")
        if following is None:
            break
        assert int(following) == ids[len(seen)]  # the next group's id, inclusive
        params["continuationToken"] = following
    assert seen == ids
    up = _list_groups(ado, queryOrder="idAscending", **{"$top": 3})
    assert [g["id"] for g in up.json()["value"]] == sorted(ids)[:3]
    assert up.headers["x-ms-continuationtoken"] == str(sorted(ids)[3])


def test_variable_groups_by_name_wildcard_and_by_ids(ado: Ado) -> None:
    flux, gitops, other = _groups(ado, "flux-prod", "GitOps", "other")
    names = {g["name"] for g in _list_groups(ado, groupName="*o*").json()["value"]}
    assert names == {"flux-prod", "GitOps", "other"}
    assert [g["id"] for g in _list_groups(ado, groupName="git*").json()["value"]] == [gitops]
    assert _list_groups(ado, groupName="git").json()["value"] == []
    by_ids = _list_groups(ado, groupIds=f"{other},{flux},9999").json()
    assert [g["id"] for g in by_ids["value"]] == [other, flux]
    assert by_ids["count"] == 2
    assert _list_groups(ado, groupIds="1,x").status_code == 400


def test_projects_page_with_the_continuation_token(ado: Ado) -> None:
    for name in ("alpha", "beta", "gamma"):
        ado.admin("POST", "/projects", json={"name": name})
    url = ado.devops("_apis/projects")
    headers = bearer(ado.sp_token())
    first = ado.client.get(url, params={**API, "$top": 3}, headers=headers)
    assert [p["name"] for p in first.json()["value"]] == ["alpha", "beta", "gamma"]
    token = first.headers["x-ms-continuationtoken"]
    rest = ado.client.get(
        url, params={**API, "$top": 3, "continuationToken": token}, headers=headers
    )
    assert [p["name"] for p in rest.json()["value"]] == ["infra"]
    assert "x-ms-continuationtoken" not in rest.headers
    skipped = ado.client.get(url, params={**API, "$skip": 1, "$top": 1}, headers=headers)
    assert [p["name"] for p in skipped.json()["value"]] == ["beta"]


def _assert_identity_ref(ref: dict[str, Any]) -> None:
    assert GUID.match(ref["id"]), ref
    assert ref["displayName"]
    assert ref["uniqueName"]
    assert ref["url"].endswith(f"/_apis/Identities/{ref['id']}")
    assert ref["imageUrl"].endswith(f"identityImage?id={ref['id']}")


def test_library_objects_carry_identity_references(ado: Ado) -> None:
    (group_id,) = _groups(ado, "refs")
    url = ado.devops(f"_apis/distributedtask/variablegroups/{group_id}")
    pat = str(ado.admin_pat(scope="vso.variablegroups_manage")["token"])
    body = {"name": "refs", "variables": {"A": {"value": "2"}}}
    updated = ado.client.put(url, params=API, json=body, headers=basic(pat)).json()
    _assert_identity_ref(updated["createdBy"])
    _assert_identity_ref(updated["modifiedBy"])
    rotator = ado.emulator["identities"]["rotator"]
    assert updated["modifiedBy"]["id"] == rotator["object_id"]
    assert updated["modifiedBy"]["uniqueName"] == ado.rotator
    assert updated["createdBy"]["id"] != updated["modifiedBy"]["id"]
    endpoint = ado.admin(
        "POST",
        "/service-endpoints",
        json={"project": "infra", "name": "e", "parameters": {"apitoken": "x"}},
    )
    _assert_identity_ref(endpoint["createdBy"])


def test_service_endpoints_list_filters(ado: Ado) -> None:
    def made(name: str, kind: str) -> str:
        spec = {"project": "infra", "name": name, "type": kind, "parameters": {"password": "p"}}
        return str(ado.admin("POST", "/service-endpoints", json=spec)["id"])

    repos, generic = made("repos", "externaltfs"), made("generic", "generic")
    url = ado.devops("infra/_apis/serviceendpoint/endpoints")
    headers = bearer(ado.sp_token())

    def ids(**params: str) -> list[str]:
        response = ado.client.get(url, params={**API, **params}, headers=headers)
        assert response.status_code == 200, response.text
        assert "p" not in [
            e["authorization"]["parameters"]["password"] for e in response.json()["value"]
        ]
        return [e["id"] for e in response.json()["value"]]

    assert ids() == [generic, repos]  # by name
    assert ids(type="externaltfs") == [repos]
    assert ids(endpointIds=f"{generic},{repos.upper()}") == [generic, repos]
    assert ids(endpointNames="REPOS") == [repos]


def test_graph_get_user_by_descriptor(ado: Ado) -> None:
    headers = bearer(ado.user_token(ado.admin_user))
    params = {"api-version": "7.1-preview.1"}
    users = ado.client.get(ado.vssps("_apis/graph/users"), params=params, headers=headers)
    rotator = next(u for u in users.json()["value"] if u["principalName"] == ado.rotator)
    url = ado.vssps(f"_apis/graph/users/{rotator['descriptor']}")
    assert ado.client.get(url, params=params, headers=headers).json() == rotator
    missing = ado.client.get(ado.vssps("_apis/graph/users/aad.eA"), params=params, headers=headers)
    assert missing.status_code == 404
    assert missing.json()["typeKey"] == "GraphSubjectNotFoundException"


@pytest.mark.parametrize("host", ["devops", "vssps"])
def test_route_discovery_documents(ado: Ado, host: str) -> None:
    base = ado.devops("_apis") if host == "devops" else ado.vssps("_apis")
    anonymous = ado.client.get(f"{base}/ResourceAreas", headers=SUPPRESS)
    assert anonymous.status_code == 200
    areas = {a["name"]: a for a in anonymous.json()["value"]}
    assert areas["core"]["locationUrl"] == ado.devops("")
    assert areas["Graph"]["locationUrl"] == ado.vssps("")
    core_id = "79134c72-4a58-4b42-976c-04e7115f32bf"
    one = ado.client.get(f"{base}/ResourceAreas/{core_id.upper()}", headers=SUPPRESS).json()
    assert one == areas["core"]
    assert ado.client.get(f"{base}/ResourceAreas/{'0' * 32}", headers=SUPPRESS).status_code == 404
    assert ado.client.request("OPTIONS", base, headers=SUPPRESS).status_code == 401
    options = ado.client.request("OPTIONS", base, headers=bearer(ado.sp_token()))
    assert options.status_code == 200
    locations = {loc["id"]: loc for loc in options.json()["value"]}
    assert options.json()["count"] == len(locations)
    connection_data = locations["00d9565f-ed9c-4a06-9a50-00e7896ccab4"]
    assert connection_data["routeTemplate"] == "_apis/{resource}"
    expected = (
        "f5b09dd5-9d54-45a1-8b5a-1c8287d634cc"
        if host == "devops"
        else ("005e26ec-6b77-4e4f-a986-b3827bf241f5")
    )
    assert set(locations[expected]) == {
        "id",
        "area",
        "resourceName",
        "routeTemplate",
        "resourceVersion",
        "minVersion",
        "maxVersion",
        "releasedVersion",
    }


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "devops/contoso/_apis/nothing/here", 404),
        ("GET", "vssps/contoso/_apis/tokens/nothing", 404),
        ("PATCH", "devops/contoso/_apis/projects", 405),
        ("POST", "vssps/contoso/_apis/graph/users", 405),
    ],
)
def test_unknown_routes_answer_the_vss_envelope(
    ado: Ado, method: str, path: str, status: int
) -> None:
    base = str(ado.emulator["admin_url"]).rsplit("/_admin", 1)[0]
    response = ado.client.request(method, f"{base}/{path}", headers=bearer(ado.sp_token()))
    assert response.status_code == status
    body = response.json()
    assert set(body) == ENVELOPE_KEYS
    assert body["typeKey"] == "HttpException"
    assert body["innerException"] is None
    assert response.headers["x-tfs-serviceerror"]
    if status == 404:
        assert f"'/{path.partition('/')[2]}'" in body["message"]


def test_admin_api_keeps_its_own_not_found(ado: Ado) -> None:
    response = ado.client.get(ado.emulator["admin_url"] + "/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_revoke_without_authorization_id_is_400(ado: Ado) -> None:
    response = ado.pats("DELETE")
    assert response.status_code == 400
    body = response.json()
    assert set(body) == ENVELOPE_KEYS
    assert body["typeKey"] == "ArgumentNullException"
    assert "authorizationId" in body["message"]
