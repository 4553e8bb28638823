"""Token Admin (contract §3.1) and Graph users on the emulated Azure DevOps."""

from __future__ import annotations

import base64

import httpx

from tests.emulator.devops_support import Ado
from tests.support.pats import basic, bearer

TOKEN_ADMIN = "7.1-preview.1"


def _descriptor(ado: Ado, username: str) -> str:
    users = _all_graph_users(ado, bearer(ado.user_token(ado.admin_user)))
    return next(u["descriptor"] for u in users if u["principalName"] == username)


def _all_graph_users(ado: Ado, headers: dict[str, str]) -> list[dict[str, object]]:
    users: list[dict[str, object]] = []
    params = {"api-version": "7.1-preview.1", "subjectTypes": "aad"}
    tokens: set[str] = set()
    while True:
        response = ado.client.get(ado.vssps("_apis/graph/users"), params=params, headers=headers)
        assert response.status_code == 200, response.text
        users += response.json()["value"]
        following = response.headers.get("x-ms-continuationtoken")
        if not following:
            return users
        assert following not in tokens
        tokens.add(following)
        params["continuationToken"] = following


def _list(ado: Ado, descriptor: str, headers: dict[str, str], **params: str) -> httpx.Response:
    url = ado.vssps(f"_apis/tokenadmin/personalaccesstokens/{descriptor}")
    return ado.client.get(url, params={"api-version": TOKEN_ADMIN, **params}, headers=headers)


def test_admin_lists_a_users_pats_page_by_page_without_values(ado: Ado) -> None:
    created = {ado.create_pat(displayName=f"t{i}")["authorizationId"] for i in range(7)}
    descriptor = _descriptor(ado, ado.rotator)
    headers = bearer(ado.user_token(ado.admin_user))
    seen: list[str] = []
    continuation = None
    pages = 0
    while True:
        params = {"pageSize": "3"}
        if continuation:
            params["continuationToken"] = continuation
        response = _list(ado, descriptor, headers, **params)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        for token in page["value"]:
            assert token["token"] is None
            assert token["isValid"] is True
            assert token["userId"] == ado.emulator["identities"]["rotator"]["object_id"]
            seen.append(token["authorizationId"])
        continuation = page["continuationToken"]
        if continuation is None:
            break
    assert pages == 3
    assert sorted(seen) == sorted(created)


def test_admin_revokes_other_users_pats(ado: Ado) -> None:
    pat = ado.create_pat(scope="vso.project")
    response = ado.client.post(
        ado.vssps("_apis/tokenadmin/revocations"),
        params={"api-version": TOKEN_ADMIN},
        json=[{"authorizationId": pat["authorizationId"]}],
        headers=bearer(ado.user_token(ado.admin_user)),
    )
    assert response.status_code == 204
    check = ado.client.get(ado.devops("_apis/connectionData"), headers=basic(pat["token"]))
    assert check.status_code == 401
    listed = _list(ado, _descriptor(ado, ado.rotator), bearer(ado.user_token(ado.admin_user)))
    assert [t["isValid"] for t in listed.json()["value"]] == [False]


def test_non_admins_and_service_principals_are_refused(ado: Ado) -> None:
    descriptor = _descriptor(ado, ado.rotator)
    as_rotator = _list(ado, descriptor, bearer(ado.user_token()))
    assert as_rotator.status_code == 401
    assert as_rotator.json()["typeKey"] == "AccessCheckException"
    as_sp = _list(ado, descriptor, bearer(ado.sp_token()))
    assert as_sp.status_code == 401
    assert as_sp.json()["message"] == "Service principals are not allowed to perform this action."
    ado.set_policies(service_principals_token_admin=True)
    assert _list(ado, descriptor, bearer(ado.sp_token())).status_code == 200
    wrong_scope = _list(ado, descriptor, bearer(ado.user_token(ado.admin_user, scopes="vso.pats")))
    assert wrong_scope.status_code == 401


def test_token_admin_input_errors(ado: Ado) -> None:
    headers = bearer(ado.user_token(ado.admin_user))
    assert _list(ado, "not-a-descriptor", headers).status_code == 400
    assert _list(ado, "aad.bm9ib2R5LWhlcmU", headers).status_code == 404
    descriptor = _descriptor(ado, ado.rotator)
    assert _list(ado, descriptor, headers, pageSize="1000").status_code == 400


def test_graph_users_page_with_continuation_header(ado: Ado) -> None:
    ado.admin("POST", "/seed", json={"users": 30, "pats_per_user": 0, "seed": 7})
    ado.set_policies(graph_page_size=10)
    ado.admin("PATCH", "/users/legacy-svc@contoso.example", json={"removed": True})
    users = _all_graph_users(ado, bearer(ado.user_token()))
    names = [u["principalName"] for u in users]
    assert len(names) == 33
    assert len(set(names)) == 33
    legacy = next(u for u in users if u["principalName"] == "legacy-svc@contoso.example")
    assert legacy["isDeletedInOrigin"] is True
    rotator = next(u for u in users if u["principalName"] == ado.rotator)
    assert rotator["subjectKind"] == "user"
    assert rotator["origin"] == "aad"
    assert rotator["metaType"] == "member"
    assert rotator["originId"] == ado.emulator["identities"]["rotator"]["object_id"]
    assert "isDeletedInOrigin" not in rotator


def test_membership_state_shows_disabled_users(ado: Ado) -> None:
    descriptor = _descriptor(ado, ado.rotator)
    url = ado.vssps(f"_apis/graph/membershipstates/{descriptor}")
    params = {"api-version": "7.1-preview.1"}
    headers = bearer(ado.user_token(ado.admin_user))
    assert ado.client.get(url, params=params, headers=headers).json()["active"] is True
    ado.admin("PATCH", f"/users/{ado.rotator}", json={"enabled": False})
    assert ado.client.get(url, params=params, headers=headers).json()["active"] is False


def test_graph_needs_graph_scope_for_pats(ado: Ado) -> None:
    url = ado.vssps("_apis/graph/users")
    params = {"api-version": "7.1-preview.1"}
    graph_pat = ado.create_pat(scope="vso.graph")["token"]
    code_pat = ado.create_pat(scope="vso.code")["token"]
    assert ado.client.get(url, params=params, headers=basic(graph_pat)).status_code == 200
    assert ado.client.get(url, params=params, headers=basic(code_pat)).status_code == 401
    bad = {**params, "continuationToken": base64.b64encode(b"junk").decode()}
    assert ado.client.get(url, params=bad, headers=basic(graph_pat)).status_code == 400
