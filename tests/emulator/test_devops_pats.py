"""The emulated PAT Lifecycle API (contract §1, §2, §7.3) through httpx and real Entra tokens."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import sqlite3

import pytest

from tests.emulator.devops_support import Ado, valid_to
from tests.support import clock
from tests.support.pats import SUPPRESS, basic, bearer


def _in(days: float) -> str:
    moment = clock.now() + dt.timedelta(days=days)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", value))


# create / get / list / update / revoke ---------------------------------------------------------
def test_create_returns_token_once_and_stores_only_its_hash(ado: Ado) -> None:
    day = valid_to()[:10]
    created = ado.create_pat(
        displayName="ci-feed-reader",
        scope="vso.packaging vso.code",
        validTo=f"{day}T00:00:23.319Z",
        targetAccounts=["00000000-0000-0000-0000-000000000000"],
    )
    token = created["token"]
    assert token.startswith("pwemu_")  # never mistaken for a real PAT by a secret scanner
    assert len(token) >= 52 + len("pwemu_")
    assert token.removeprefix("pwemu_").isalnum()
    assert created["validTo"] == f"{day}T00:00:23.32Z"  # SQL datetime rounding (§1.4)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z", created["validFrom"])
    assert created["targetAccounts"] == [ado.emulator["organization_id"]]  # request field ignored
    assert created["scope"] == "vso.packaging vso.code"

    got = ado.pats("GET", params={"authorizationId": created["authorizationId"]}).json()
    assert got["patTokenError"] == "none"
    assert got["patToken"]["token"] is None
    assert got["patToken"]["displayName"] == "ci-feed-reader"

    issued = ado.emulator.admin("GET", "/issued-secrets").text
    assert token in issued
    db = sqlite3.connect(f"file:{ado.emulator.state_dir / 'emulator.db'}?mode=ro", uri=True)
    try:
        dump = "\n".join(db.iterdump())
    finally:
        db.close()
    assert token not in dump
    assert hashlib.sha256(token.encode()).hexdigest() in dump


def test_list_defaults_to_active_sorted_by_display_name(ado: Ado) -> None:
    for name, days in (("charlie", 10), ("alpha", 30), ("bravo", 20)):
        ado.create_pat(displayName=name, validTo=_in(days))
    ado.admin_pat(displayName="old", validFrom=_in(-40), validTo=_in(-10))
    ado.admin_pat(displayName="gone", revoked=True)
    page = ado.pats("GET").json()
    assert [p["displayName"] for p in page["patTokens"]] == ["alpha", "bravo", "charlie"]
    assert all(p["token"] is None for p in page["patTokens"])
    assert page["continuationToken"] == ""

    def names(**params: str) -> list[str]:
        return [p["displayName"] for p in ado.pats("GET", params=params).json()["patTokens"]]

    assert names(displayFilterOption="revoked") == ["gone"]
    assert names(displayFilterOption="expired") == ["old"]
    assert names(displayFilterOption="all") == ["alpha", "bravo", "charlie", "gone", "old"]
    assert names(displayFilterOption="all", isSortAscending="false")[0] == "old"
    assert names(displayFilterOption="all", sortByOption="status")[-2:] == ["old", "gone"]
    assert names(sortByOption="displayDate") == ["charlie", "bravo", "alpha"]


def test_list_pages_250_tokens_exactly_once(ado: Ado) -> None:
    created = {ado.create_pat(displayName=f"tok-{i:03d}")["authorizationId"] for i in range(250)}
    seen: list[str] = []
    tokens: list[str] = []
    continuation = None
    while True:
        params = {"$top": "100"}
        if continuation:
            params["continuationToken"] = continuation
        page = ado.pats("GET", params=params).json()
        seen += [p["authorizationId"] for p in page["patTokens"]]
        continuation = page["continuationToken"]
        if not continuation:
            break
        tokens.append(continuation)
    assert len(seen) == 250
    assert sorted(seen) == sorted(created)
    assert [base64.b64decode(t).decode() for t in tokens] == ["101-patapitoken", "201-patapitoken"]


def test_top_defaults_to_20_and_is_capped_at_100(ado: Ado) -> None:
    for i in range(120):
        ado.admin_pat(displayName=f"t{i:03d}")
    assert len(ado.pats("GET").json()["patTokens"]) == 20
    page = ado.pats("GET", params={"$top": "500"}).json()
    assert len(page["patTokens"]) == 100
    assert page["continuationToken"] == base64.b64encode(b"101-patapitoken").decode()


def test_update_changes_given_fields_and_keeps_the_rest(ado: Ado) -> None:
    created = ado.create_pat(displayName="before", scope="vso.code", validTo=_in(10))
    new_to = _in(20)
    result = ado.pats(
        "PUT",
        json={
            "authorizationId": created["authorizationId"],
            "displayName": "after",
            "validTo": new_to,
        },
    ).json()
    assert result["patTokenError"] == "none"
    updated = result["patToken"]
    assert updated["displayName"] == "after"
    assert updated["scope"] == "vso.code"
    assert updated["token"] is None
    assert abs(_parse(updated["validTo"]) - _parse(new_to)) < dt.timedelta(milliseconds=5)
    assert updated["targetAccounts"] == created["targetAccounts"]


def test_revoke_answers_204_and_the_token_stops_working(ado: Ado) -> None:
    created = ado.create_pat(scope="vso.project")
    check = ado.client.get(ado.devops("_apis/connectionData"), headers=basic(created["token"]))
    assert check.status_code == 200
    response = ado.pats("DELETE", params={"authorizationId": created["authorizationId"]})
    assert response.status_code == 204
    assert response.content == b""
    after = ado.client.get(ado.devops("_apis/connectionData"), headers=basic(created["token"]))
    assert after.status_code == 401
    listed = ado.pats("GET", params={"displayFilterOption": "revoked"}).json()["patTokens"]
    assert [p["authorizationId"] for p in listed] == [created["authorizationId"]]


def test_revoke_status_can_be_switched_to_200(ado: Ado) -> None:
    ado.set_policies(revoke_status=200)
    created = ado.create_pat()
    response = ado.pats("DELETE", params={"authorizationId": created["authorizationId"]})
    assert response.status_code == 200


# business errors: HTTP 200 + patTokenError ------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "code"),
    [
        (
            {"displayName": "", "scope": "vso.code", "validTo": valid_to()[:10]},
            "displayNameRequired",
        ),
        ({"displayName": "x", "scope": "vso.nope", "validTo": valid_to()[:10]}, "invalidScope"),
        ({"displayName": "x", "scope": "vso.pats", "validTo": valid_to()[:10]}, "invalidScope"),
        ({"displayName": "x", "scope": "vso.code", "validTo": "2001-01-01"}, "invalidValidTo"),
        ({"displayName": "x", "scope": "vso.code", "validTo": "soon"}, "invalidValidTo"),
    ],
)
def test_create_validation_errors(ado: Ado, body: dict[str, str], code: str) -> None:
    response = ado.pats("POST", json=body)
    assert response.status_code == 200
    result = response.json()
    assert result["patTokenError"] == code
    assert result["patToken"] is None
    assert result["patTokenErrorMessage"]


def test_get_update_revoke_errors(ado: Ado) -> None:
    mine = ado.create_pat()
    theirs = ado.admin_pat(username=ado.admin_user)["authorizationId"]
    unknown = "4ab5764f-4193-4f1d-b995-64144880b7d7"

    def error(method: str, auth_id: str) -> str:
        if method == "PUT":
            response = ado.pats("PUT", json={"authorizationId": auth_id, "displayName": "n"})
        else:
            response = ado.pats(method, params={"authorizationId": auth_id})
        assert response.status_code == 200, response.text
        return str(response.json()["patTokenError"])

    for method in ("GET", "PUT", "DELETE"):
        assert error(method, unknown) == "tokenNotFound"
        assert error(method, theirs) == "accessDenied"
        assert error(method, "not-a-guid") == "invalidAuthorizationId"
    ado.pats("DELETE", params={"authorizationId": mine["authorizationId"]})
    assert error("PUT", mine["authorizationId"]) == "invalidToken"


def test_extending_an_expired_token_is_refused(ado: Ado) -> None:
    expired = ado.admin_pat(validFrom=_in(-30), validTo=_in(-1))["authorizationId"]
    result = ado.pats("PUT", json={"authorizationId": expired, "validTo": _in(30)}).json()
    assert result["patTokenError"] == "expiredPatCannotBeExtended"
    renamed = ado.pats("PUT", json={"authorizationId": expired, "displayName": "renamed"}).json()
    assert renamed["patTokenError"] == "none"


# policies ---------------------------------------------------------------------------------------
def test_lifespan_policy_clamps_create_and_update(ado: Ado) -> None:
    ado.set_policies(max_lifespan_days=30, lifespan_mode="clamp")
    created = ado.create_pat(validTo=_in(90))
    valid_from, valid_to = _parse(created["validFrom"]), _parse(created["validTo"])
    assert abs(valid_to - valid_from - dt.timedelta(days=30)) < dt.timedelta(seconds=1)
    updated = ado.pats(
        "PUT", json={"authorizationId": created["authorizationId"], "validTo": _in(365)}
    ).json()["patToken"]
    assert abs(_parse(updated["validTo"]) - valid_from - dt.timedelta(days=30)) < dt.timedelta(
        seconds=1
    )


def test_lifespan_policy_refuses_in_refuse_mode(ado: Ado) -> None:
    ado.set_policies(max_lifespan_days=30, lifespan_mode="refuse")
    result = ado.pats(
        "POST", json={"displayName": "long", "scope": "vso.code", "validTo": _in(90)}
    ).json()
    assert result == {
        "patToken": None,
        "patTokenError": "patLifespanPolicyViolation",
        "patTokenErrorMessage": result["patTokenErrorMessage"],
    }
    assert ado.pats("GET").json()["patTokens"] == []
    assert ado.create_pat(validTo=_in(29))["displayName"] == "test-token"


def test_full_scope_global_and_creation_policies(ado: Ado) -> None:
    ado.set_policies(restrict_full_scope=True, restrict_global=True)
    full = ado.pats("POST", json={"displayName": "f", "scope": "app_token", "validTo": _in(5)})
    assert full.json()["patTokenError"] == "fullScopePatPolicyViolation"
    glob = ado.pats(
        "POST", json={"displayName": "g", "scope": "vso.code", "validTo": _in(5), "allOrgs": True}
    )
    assert glob.json()["patTokenError"] == "globalPatPolicyViolation"
    ado.set_policies(allowlist=[ado.rotator])
    assert ado.create_pat(scope="app_token", allOrgs=True)["targetAccounts"] is None
    ado.set_policies(allowlist=[], disable_pat_creation=True)
    blocked = ado.pats("POST", json={"displayName": "d", "scope": "vso.code", "validTo": _in(5)})
    assert blocked.json()["patTokenError"] == "disablePatCreationPolicyViolation"


def test_policies_admin_validates_input(ado: Ado) -> None:
    with ado.emulator.http() as client:
        bad = client.put(ado.emulator["admin_url"] + "/policies", json={"lifespan_mode": "maybe"})
    assert bad.status_code == 400
    assert "lifespan_mode" in bad.json()["error"]
    assert ado.emulator.admin("GET", "/policies").json()["lifespan_mode"] == "clamp"


def test_legacy_pat_format_is_52_characters(ado: Ado) -> None:
    ado.set_policies(pat_format="legacy52")
    assert len(ado.create_pat()["token"].removeprefix("pwemu_")) == 52
    ado.set_policies(pat_format="azdo84")
    assert len(ado.create_pat()["token"].removeprefix("pwemu_")) == 84


# who may call it --------------------------------------------------------------------------------
def _envelope(response_json: dict[str, object], type_key: str, message: str) -> None:
    assert response_json["$id"] == "1"
    assert response_json["typeKey"] == type_key
    assert response_json["message"] == message
    assert response_json["innerException"] is None
    assert response_json["errorCode"] == 0
    assert response_json["eventId"] == 3000


def test_service_principal_is_refused(ado: Ado) -> None:
    response = ado.pats("GET", token=ado.sp_token())
    assert response.status_code == 401
    _envelope(
        response.json(),
        "InvalidAccessException",
        "Service principals are not allowed to perform this action.",
    )
    assert "Service%20principals" in response.headers["x-tfs-serviceerror"]


def test_pat_over_basic_is_refused(ado: Ado) -> None:
    pat = ado.create_pat(scope="app_token")["token"]
    response = ado.pats("GET", headers=basic(pat))
    assert response.status_code == 401
    _envelope(response.json(), "InvalidAccessException", "The requested operation is not allowed.")


def test_scopes_are_enforced_per_verb(ado: Ado) -> None:
    read_only = ado.user_token(scopes="vso.pats")
    assert ado.pats("GET", token=read_only).status_code == 200
    refused = ado.pats(
        "POST", token=read_only, json={"displayName": "x", "scope": "vso.code", "validTo": _in(1)}
    )
    assert refused.status_code == 401
    assert refused.json()["typeKey"] == "UnauthorizedRequestException"
    other = ado.user_token(scopes="vso.project")
    assert ado.pats("GET", token=other).status_code == 401


def test_missing_or_bad_token_gives_401_or_sign_in_page(ado: Ado) -> None:
    url = ado.vssps("_apis/tokens/pats")
    params = {"api-version": "7.1-preview.1"}
    suppressed = ado.client.get(url, params=params, headers=SUPPRESS)
    assert suppressed.status_code == 401
    assert suppressed.json()["message"].startswith("TF400813")
    assert "Basic realm=" in suppressed.headers["www-authenticate"]
    forged = ado.client.get(url, params=params, headers=bearer("eyJhbGciOi.forged.token"))
    assert forged.status_code == 401
    page = ado.client.get(url, params=params)
    assert page.status_code == 203
    assert page.headers["content-type"].startswith("text/html")


def test_api_version_and_body_errors(ado: Ado) -> None:
    url = ado.vssps("_apis/tokens/pats")
    headers = bearer(ado.user_token())
    missing = ado.client.get(url, headers=headers)
    assert missing.status_code == 400
    assert missing.json()["typeKey"] == "VssVersionNotSpecifiedException"
    not_preview = ado.client.get(url, params={"api-version": "7.1"}, headers=headers)
    assert not_preview.status_code == 400
    malformed = ado.client.post(
        url,
        params={"api-version": "7.1-preview.1"},
        content=b"{not json",
        headers={**headers, "Content-Type": "application/json"},
    )
    assert malformed.status_code == 400
    assert malformed.json()["message"].startswith("TF400898")


def test_path_is_case_insensitive_and_unknown_org_is_404(ado: Ado) -> None:
    url = f"{ado.emulator['vssps_url']}/{ado.org.upper()}/_apis/Tokens/Pats"
    ok = ado.client.get(
        url, params={"api-version": "6.1-preview"}, headers=bearer(ado.user_token())
    )
    assert ok.status_code == 200
    missing = ado.pats("GET", org="no-such-org")
    assert missing.status_code == 404
    assert missing.json()["typeKey"] == "HostDoesNotExistException"


def test_seed_creates_ten_thousand_users_with_five_pats_each_in_seconds(ado: Ado) -> None:
    result = ado.admin(
        "POST", "/seed", json={"users": 10_000, "pats_per_user": 5, "seed": 3}, timeout=60
    )
    assert result["pats"] == 50_000
    assert result["seconds"] < 10
    listed = ado.admin("GET", "/pats", params={"username": "seed3-00042@contoso.example"})
    assert len(listed["value"]) == 5
    assert all(item["token"] is None for item in listed["value"])
    assert {"revoked", "expired", "username"} <= set(listed["value"][0])
