from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from patwarden.azdo import (
    AzdoUnexpectedResponse,
    CreateOutcomeUnknown,
    DisplayFilter,
    PatNotFound,
    PatNotModifiable,
    PatPolicyViolation,
    ServicePrincipalNotAllowed,
    SortBy,
    UnknownPatError,
)
from patwarden.azdo.timestamps import format_datetime
from patwarden.errors import ConfigError
from patwarden.secret import Secret

from .conftest import PAT_VALUE, VSSPS, MakeHarness, json_response, pat_json
from .test_errors import EXPECTED_CLASS

VALID_TO = datetime(2026, 7, 1, tzinfo=UTC)
AUTH_ID = "4ab5764f-4193-4f1d-b995-64144880b7d7"


def created(**kwargs: Any) -> httpx.Response:
    return json_response(
        200, {"patToken": pat_json(token=PAT_VALUE, **kwargs), "patTokenError": "none"}
    )


def create(h: Any, **kwargs: Any) -> Any:
    args: dict[str, Any] = {
        "org": "contoso",
        "display_name": "ci-feed-reader",
        "scopes": ["vso.packaging"],
        "valid_to": VALID_TO,
    }
    args.update(kwargs)
    return h.client.pats.create(**args)


def test_create_sends_an_org_scoped_request_and_returns_the_value(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(lambda r: created())
    result = create(h, scopes=["vso.packaging", "vso.code"])
    request = h.recorder.last
    assert request.method == "POST"
    assert str(request.url).startswith(f"{VSSPS}/contoso/_apis/tokens/pats?")
    assert request.url.params["api-version"] == "7.1-preview.1"
    assert json.loads(request.content) == {
        "displayName": "ci-feed-reader",
        "scope": "vso.packaging vso.code",
        "validTo": "2026-07-01T00:00:00Z",
        "allOrgs": False,
    }
    assert result.token.authorization_id == AUTH_ID
    assert result.token.scope == ("vso.packaging",)
    assert result.token.valid_from == datetime(2026, 6, 1, 9, 12, 44, 103333, tzinfo=UTC)
    assert result.token.target_accounts == ("38aaa865-2c70-4bf7-a308-0c6539c38c1a",)
    assert result.token.is_global is False
    assert result.value == Secret(PAT_VALUE)
    assert result.clamped_from is None
    assert PAT_VALUE not in repr(result)


def test_global_pats_need_two_explicit_flags(make_harness: MakeHarness) -> None:
    h = make_harness(lambda r: created(is_global=True))
    with pytest.raises(ConfigError, match="allow_global=True"):
        create(h, all_orgs=True)
    assert h.requests == []
    result = create(h, all_orgs=True, allow_global=True)
    assert json.loads(h.recorder.last.content)["allOrgs"] is True
    assert "targetAccounts" not in json.loads(h.recorder.last.content)
    assert result.token.is_global is True


def test_full_access_needs_an_explicit_flag(make_harness: MakeHarness) -> None:
    h = make_harness(lambda r: created(scope="app_token"))
    with pytest.raises(ConfigError, match="full access"):
        create(h, scopes=["app_token"])
    assert h.requests == []
    create(h, scopes=["app_token"], allow_full_access=True)
    assert json.loads(h.recorder.last.content)["scope"] == "app_token"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"org": "contoso/../x"},
        {"display_name": ""},
        {"scopes": []},
        {"scopes": ["vso.code vso.build"]},
        {"valid_to": datetime(2026, 7, 1)},
    ],
)
def test_bad_create_arguments_never_reach_the_network(
    make_harness: MakeHarness, kwargs: dict[str, Any]
) -> None:
    h = make_harness(lambda r: created())
    with pytest.raises(ConfigError):
        create(h, **kwargs)
    assert h.requests == []


def test_clamped_expiry_is_surfaced_and_logged_without_secrets(
    make_harness: MakeHarness, caplog: pytest.LogCaptureFixture
) -> None:
    granted = VALID_TO - timedelta(days=60)
    h = make_harness(lambda r: created(valid_to=format_datetime(granted)))
    with caplog.at_level(logging.DEBUG):
        result = create(h)
    assert result.token.valid_to == granted
    assert result.requested_valid_to == VALID_TO
    assert result.clamped_from == VALID_TO
    assert "shortened the expiry of PAT 'ci-feed-reader'" in caplog.text
    assert PAT_VALUE not in caplog.text


def test_sql_rounding_is_not_mistaken_for_clamping(make_harness: MakeHarness) -> None:
    requested = datetime(2026, 7, 1, 0, 0, 23, 319000, tzinfo=UTC)
    h = make_harness(lambda r: created(valid_to="2026-07-01T00:00:23.32Z"))
    result = create(h, valid_to=requested)
    assert json.loads(h.recorder.last.content)["validTo"] == "2026-07-01T00:00:23.319Z"
    assert result.clamped_from is None


def test_lifespan_refusal_variant_raises_policy_violation(make_harness: MakeHarness) -> None:
    h = make_harness(
        lambda r: json_response(
            200, {"patToken": None, "patTokenError": "patLifespanPolicyViolation"}
        )
    )
    with pytest.raises(PatPolicyViolation) as info:
        create(h)
    assert info.value.policy == "max-pat-lifespan"
    assert "create PAT 'ci-feed-reader' in organization 'contoso'" in str(info.value)


@pytest.mark.parametrize("code", sorted(EXPECTED_CLASS))
def test_every_pat_token_error_from_the_service_raises_its_class(
    make_harness: MakeHarness, code: str
) -> None:
    h = make_harness(
        lambda r: json_response(
            200,
            {"patToken": None, "patTokenError": code, "patTokenErrorMessage": f"about {code}"},
        )
    )
    with pytest.raises(EXPECTED_CLASS[code]) as info:
        create(h)
    assert f"Server said: about {code}" in str(info.value)
    assert len(h.requests) == 1  # business errors are never retried


def test_an_unknown_error_value_is_named(make_harness: MakeHarness) -> None:
    h = make_harness(lambda r: json_response(200, {"patToken": None, "patTokenError": "newThing"}))
    with pytest.raises(UnknownPatError, match="newThing"):
        create(h)


@pytest.mark.parametrize(
    "answer",
    [
        json_response(200, {"patToken": None, "patTokenError": "none"}),
        json_response(200, {"patToken": pat_json(token=None), "patTokenError": "none"}),
        json_response(200, {"patToken": pat_json(token=PAT_VALUE), "patTokenError": 3}),
        json_response(200, []),
        json_response(200, {"patToken": pat_json(token=PAT_VALUE, valid_to=5)}),
        httpx.Response(200, content=b"\x00not json {"),
        httpx.Response(200),
    ],
)
def test_a_success_answer_that_cannot_be_read_means_the_create_outcome_is_unknown(
    make_harness: MakeHarness, answer: httpx.Response
) -> None:
    # Found by tests/reliability: these were AzdoUnexpectedResponse, so the engine took the create
    # as refused and never looked up the PAT the service had made (an orphan until reconcile).
    h = make_harness(lambda r: answer)
    with pytest.raises(
        CreateOutcomeUnknown, match="may have succeeded, but the answer could not"
    ) as info:
        create(h)
    assert len(h.requests) == 1, "a create is never resent"
    assert PAT_VALUE not in str(info.value)


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.Response(500),
        httpx.Response(504),
    ],
)
def test_a_lost_create_is_not_resent_and_can_be_found_by_name(
    make_harness: MakeHarness, failure: httpx.Response | Exception
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            if isinstance(failure, Exception):
                raise failure
            return failure
        return json_response(
            200,
            {
                "patTokens": [pat_json(display_name="other"), pat_json()],
                "continuationToken": "",
            },
        )

    h = make_harness(handler)
    with pytest.raises(CreateOutcomeUnknown) as info:
        create(h)
    assert [r.method for r in h.requests] == ["POST"]
    assert info.value.display_name == "ci-feed-reader"
    assert info.value.organization == "contoso"
    assert "may or may not have succeeded" in str(info.value)
    assert "find_by_display_name" in (info.value.hint or "")
    found = h.client.pats.find_by_display_name(org="contoso", name="ci-feed-reader")
    assert [t.authorization_id for t in found] == [AUTH_ID]


def test_a_throttled_create_is_retried(make_harness: MakeHarness) -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "1"}), created()])
    h = make_harness(lambda r: next(answers))
    assert create(h).value == Secret(PAT_VALUE)
    assert [r.method for r in h.requests] == ["POST", "POST"]


def test_get_passes_the_id_and_maps_not_found(make_harness: MakeHarness) -> None:
    h = make_harness(
        lambda r: json_response(200, {"patToken": None, "patTokenError": "tokenNotFound"})
    )
    with pytest.raises(PatNotFound, match=AUTH_ID):
        h.client.pats.get(org="contoso", authorization_id=AUTH_ID.upper())
    assert h.recorder.last.url.params["authorizationId"] == AUTH_ID
    with pytest.raises(ConfigError):
        h.client.pats.get(org="contoso", authorization_id="../tokens")
    assert len(h.requests) == 1


def test_get_returns_the_token_without_a_value(make_harness: MakeHarness) -> None:
    h = make_harness(
        lambda r: json_response(200, {"patToken": pat_json(), "patTokenError": "none"})
    )
    token = h.client.pats.get(org="contoso", authorization_id=AUTH_ID)
    assert token.display_name == "ci-feed-reader"
    assert not hasattr(token, "value")


def paged_server(total: int, *, end: str) -> Any:
    """Serve *total* PATs like Azure DevOps: base64("{row}-patapitoken") tokens, capped $top."""

    def handler(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        top = min(int(params.get("$top", "20")), 100)
        token = params.get("continuationToken")
        start = int(base64.b64decode(token).decode().split("-")[0]) if token else 1
        rows = range(start, min(start + top, total + 1))
        body: dict[str, Any] = {
            "patTokens": [
                pat_json(
                    authorization_id=f"00000000-0000-4000-8000-{row:012d}",
                    display_name=f"pat-{row:03d}",
                )
                for row in rows
            ]
        }
        next_row = start + top
        if next_row <= total:
            body["continuationToken"] = base64.b64encode(
                f"{next_row}-patapitoken".encode()
            ).decode()
        elif end == "empty":
            body["continuationToken"] = ""
        elif end == "null":
            body["continuationToken"] = None
        return json_response(200, body)

    return handler


@pytest.mark.parametrize("end", ["empty", "absent", "null"])
def test_list_pages_through_250_pats_with_the_same_filters(
    make_harness: MakeHarness, end: str
) -> None:
    h = make_harness(paged_server(250, end=end))
    tokens = list(
        h.client.pats.list_tokens(
            org="contoso",
            display_filter=DisplayFilter.ALL,
            sort_by=SortBy.DISPLAY_DATE,
            ascending=False,
        )
    )
    assert [t.display_name for t in tokens] == [f"pat-{n:03d}" for n in range(1, 251)]
    assert len(h.requests) == 3
    assert [r.url.params.get("continuationToken") for r in h.requests] == [
        None,
        "MTAxLXBhdGFwaXRva2Vu",  # base64("101-patapitoken")
        "MjAxLXBhdGFwaXRva2Vu",  # base64("201-patapitoken")
    ]
    for request in h.requests:
        assert request.url.params["displayFilterOption"] == "all"
        assert request.url.params["sortByOption"] == "displayDate"
        assert request.url.params["isSortAscending"] == "false"
        assert request.url.params["$top"] == "100"
        assert request.url.params["api-version"] == "7.1-preview.1"


def test_list_is_lazy(make_harness: MakeHarness) -> None:
    h = make_harness(paged_server(250, end="empty"))
    iterator = h.client.pats.list_tokens(org="contoso", page_size=10)
    first = next(iterator)
    assert first.display_name == "pat-001"
    assert len(h.requests) == 1


def test_list_stops_on_a_repeated_continuation_token(make_harness: MakeHarness) -> None:
    h = make_harness(
        lambda r: json_response(200, {"patTokens": [pat_json()], "continuationToken": "same"})
    )
    with pytest.raises(AzdoUnexpectedResponse, match="came back twice"):
        list(h.client.pats.list_tokens(org="contoso"))
    assert len(h.requests) == 2


@pytest.mark.parametrize("size", [0, 101])
def test_list_page_size_is_bounded(make_harness: MakeHarness, size: int) -> None:
    h = make_harness(paged_server(1, end="empty"))
    with pytest.raises(ConfigError, match=r"1\.\.100"):
        list(h.client.pats.list_tokens(org="contoso", page_size=size))


def test_list_as_service_principal_explains_the_user_requirement(
    make_harness: MakeHarness,
) -> None:
    body = {
        "message": "Service principals are not allowed to perform this action.",
        "typeKey": "InvalidAccessException",
    }
    h = make_harness(lambda r: json_response(401, body))
    with pytest.raises(ServicePrincipalNotAllowed, match="list PATs in organization 'contoso'"):
        list(h.client.pats.list_tokens(org="contoso"))


def test_update_sends_only_given_fields_and_never_global(make_harness: MakeHarness) -> None:
    h = make_harness(
        lambda r: json_response(200, {"patToken": pat_json(), "patTokenError": "none"})
    )
    h.client.pats.update(org="contoso", authorization_id=AUTH_ID, display_name="renamed")
    assert h.recorder.last.method == "PUT"
    assert json.loads(h.recorder.last.content) == {
        "authorizationId": AUTH_ID,
        "allOrgs": False,
        "displayName": "renamed",
    }
    with pytest.raises(ConfigError, match="allow_global"):
        h.client.pats.update(org="contoso", authorization_id=AUTH_ID, all_orgs=True)


def test_extend_detects_clamping(make_harness: MakeHarness) -> None:
    h = make_harness(
        lambda r: json_response(
            200, {"patToken": pat_json(valid_to="2026-06-15T00:00:00Z"), "patTokenError": "none"}
        )
    )
    result = h.client.pats.extend(org="contoso", authorization_id=AUTH_ID, valid_to=VALID_TO)
    assert json.loads(h.recorder.last.content)["validTo"] == "2026-07-01T00:00:00Z"
    assert result.clamped_from == VALID_TO
    assert result.token.valid_to == datetime(2026, 6, 15, tzinfo=UTC)


def test_extending_an_expired_pat_says_to_rotate(make_harness: MakeHarness) -> None:
    h = make_harness(
        lambda r: json_response(
            200, {"patToken": None, "patTokenError": "expiredPatCannotBeExtended"}
        )
    )
    with pytest.raises(PatNotModifiable) as info:
        h.client.pats.extend(org="contoso", authorization_id=AUTH_ID, valid_to=VALID_TO)
    assert "Rotate the token" in str(info.value)


@pytest.mark.parametrize(
    "answer",
    [httpx.Response(204), json_response(200, {}), httpx.Response(200)],
)
def test_revoke_accepts_200_and_204(make_harness: MakeHarness, answer: httpx.Response) -> None:
    h = make_harness(lambda r: answer)
    h.client.pats.revoke(org="contoso", authorization_id=AUTH_ID)
    assert h.recorder.last.method == "DELETE"
    assert h.recorder.last.url.params["authorizationId"] == AUTH_ID


def test_revoke_maps_a_business_error(make_harness: MakeHarness) -> None:
    h = make_harness(
        lambda r: json_response(200, {"patToken": None, "patTokenError": "tokenNotFound"})
    )
    with pytest.raises(PatNotFound, match="revoke PAT"):
        h.client.pats.revoke(org="contoso", authorization_id=AUTH_ID)


def test_revoke_is_retried_because_it_is_idempotent(make_harness: MakeHarness) -> None:
    answers: Iterator[httpx.Response | Exception] = iter(
        [httpx.Response(503), httpx.ReadTimeout("slow"), httpx.Response(204)]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    h = make_harness(handler)
    h.client.pats.revoke(org="contoso", authorization_id=AUTH_ID)
    assert len(h.requests) == 3
