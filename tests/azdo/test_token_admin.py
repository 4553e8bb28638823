from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from patwarden.azdo import AzdoAccessDenied, AzdoUnexpectedResponse, SessionToken
from patwarden.errors import ConfigError

from .conftest import VSSPS, MakeHarness, json_response

DESCRIPTOR = "aad.N2QzYjA3ZjMtMjc0Yy03MGQ2LWE2NzItYjE1ZjU3ZTI1OTU4"


def session(n: int) -> dict[str, Any]:
    return {
        "authorizationId": f"00000000-0000-4000-8000-{n:012d}",
        "displayName": f"legacy-{n}",
        "scope": "vso.code vso.build",
        "validFrom": "2026-01-01T00:00:00.1234567Z",
        "validTo": "2026-12-01T00:00:00Z",
        "targetAccounts": None,
        "isValid": True,
        "isPublic": False,
        "userId": "7d3b07f3-274c-70d6-a672-b15f57e25958",
        "token": None,
    }


def test_list_follows_continuation_tokens_until_null(make_harness: MakeHarness) -> None:
    pages = {
        None: {"value": [session(1), session(2)], "continuationToken": "a1b2"},
        "a1b2": {"value": [session(3)], "continuationToken": None},
    }
    h = make_harness(lambda r: json_response(200, pages[r.url.params.get("continuationToken")]))
    tokens = list(
        h.client.token_admin.list_user_tokens(
            org="contoso", subject_descriptor=DESCRIPTOR, page_size=2
        )
    )
    assert [t.display_name for t in tokens] == ["legacy-1", "legacy-2", "legacy-3"]
    first: SessionToken = tokens[0]
    assert first.target_accounts is None
    assert first.scope == ("vso.code", "vso.build")
    assert first.is_valid is True
    assert h.requests[0].url.path == f"/contoso/_apis/tokenadmin/personalaccesstokens/{DESCRIPTOR}"
    assert str(h.requests[0].url).startswith(VSSPS)
    for request in h.requests:
        assert request.url.params["pageSize"] == "2"
        assert request.url.params["isPublic"] == "false"
        assert request.url.params["api-version"] == "7.1-preview.1"


def test_list_stops_when_continuation_is_absent(make_harness: MakeHarness) -> None:
    h = make_harness(lambda r: json_response(200, {"value": [session(1)]}))
    assert (
        len(
            list(
                h.client.token_admin.list_user_tokens(org="contoso", subject_descriptor=DESCRIPTOR)
            )
        )
        == 1
    )
    assert len(h.requests) == 1


def test_list_rejects_a_repeated_token(make_harness: MakeHarness) -> None:
    h = make_harness(lambda r: json_response(200, {"value": [], "continuationToken": "x"}))
    with pytest.raises(AzdoUnexpectedResponse):
        list(h.client.token_admin.list_user_tokens(org="contoso", subject_descriptor=DESCRIPTOR))


def test_bad_descriptor_never_reaches_the_network(make_harness: MakeHarness) -> None:
    h = make_harness(lambda r: json_response(200, {"value": []}))
    with pytest.raises(ConfigError):
        list(h.client.token_admin.list_user_tokens(org="contoso", subject_descriptor="../x"))
    assert h.requests == []


def test_revoke_posts_authorization_ids_and_accepts_204(make_harness: MakeHarness) -> None:
    h = make_harness(lambda r: httpx.Response(204))
    ids = ["00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"]
    h.client.token_admin.revoke(org="contoso", authorization_ids=ids)
    request = h.recorder.last
    assert request.method == "POST"
    assert request.url.path == "/contoso/_apis/tokenadmin/revocations"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == [{"authorizationId": i} for i in ids]


def test_revoke_is_retried_and_requires_ids(make_harness: MakeHarness) -> None:
    answers = iter([httpx.Response(503), httpx.Response(204)])
    h = make_harness(lambda r: next(answers))
    h.client.token_admin.revoke(
        org="contoso", authorization_ids=["00000000-0000-4000-8000-000000000001"]
    )
    assert len(h.requests) == 2
    with pytest.raises(ConfigError, match="No authorization ids"):
        h.client.token_admin.revoke(org="contoso", authorization_ids=[])


def test_non_admin_gets_access_denied(make_harness: MakeHarness) -> None:
    h = make_harness(lambda r: httpx.Response(401))
    with pytest.raises(AzdoAccessDenied, match="revoke 1 PAT"):
        h.client.token_admin.revoke(
            org="contoso", authorization_ids=["00000000-0000-4000-8000-000000000001"]
        )
