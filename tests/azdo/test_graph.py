from __future__ import annotations

import httpx
import pytest

from patwarden.azdo import AzdoUnexpectedResponse, GraphUser

from .conftest import MakeHarness, json_response


def user(n: int) -> dict[str, object]:
    return {
        "subjectKind": "user",
        "descriptor": f"aad.user{n}",
        "principalName": f"user{n}@contoso.example",
        "displayName": f"User {n}",
        "originId": f"origin-{n}",
        "origin": "aad",
        "mailAddress": f"user{n}@contoso.example",
    }


def test_users_are_paged_by_the_continuation_header(make_harness: MakeHarness) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        token = request.url.params.get("continuationToken")
        if token is None:
            return json_response(
                200,
                {"count": 2, "value": [user(1), user(2)]},
                headers={"X-MS-ContinuationToken": "page2"},
            )
        assert token == "page2"
        return json_response(200, {"count": 1, "value": [user(3)]})

    h = make_harness(handler)
    users = list(h.client.graph.iter_users(org="contoso", subject_types=["aad", "msa"]))
    assert [u.descriptor for u in users] == ["aad.user1", "aad.user2", "aad.user3"]
    assert users[0].principal_name == "user1@contoso.example"
    assert h.requests[0].url.path == "/contoso/_apis/graph/users"
    assert h.requests[0].url.params["subjectTypes"] == "aad,msa"
    assert h.requests[0].url.params["api-version"] == "7.1-preview.1"
    assert len(h.requests) == 2


def test_missing_fields_are_tolerated(make_harness: MakeHarness) -> None:
    h = make_harness(
        lambda r: json_response(
            200,
            {"value": [{"descriptor": "aad.x", "isDeletedInOrigin": True, "mailAddress": None}]},
            headers={"X-MS-ContinuationToken": ""},
        )
    )
    (only,) = list(h.client.graph.iter_users(org="contoso"))
    assert only == GraphUser(descriptor="aad.x", is_deleted_in_origin=True)


def test_a_user_without_descriptor_is_an_unexpected_response(make_harness: MakeHarness) -> None:
    h = make_harness(lambda r: json_response(200, {"value": [{"displayName": "ghost"}]}))
    with pytest.raises(AzdoUnexpectedResponse, match="descriptor"):
        list(h.client.graph.iter_users(org="contoso"))


def test_a_repeated_header_token_stops_the_loop(make_harness: MakeHarness) -> None:
    h = make_harness(
        lambda r: json_response(200, {"value": []}, headers={"X-MS-ContinuationToken": "same"})
    )
    with pytest.raises(AzdoUnexpectedResponse, match="twice"):
        list(h.client.graph.iter_users(org="contoso"))
