from __future__ import annotations

import base64

import httpx
import pytest

from patwarden.azdo import AzdoNotFound, AzdoServerError, VerifyFailure
from patwarden.azdo.verify import CONNECTION_DATA, PROJECTS, probe_for
from patwarden.secret import Secret

from .conftest import PAT_VALUE, MakeHarness, json_response

SIGN_IN = b"<!DOCTYPE html><html><title>Azure DevOps Services | Sign In</title></html>"


@pytest.mark.parametrize(
    ("scopes", "probe"),
    [
        (["vso.packaging"], CONNECTION_DATA),
        (["vso.code_write", "vso.build"], CONNECTION_DATA),
        (["vso.project"], PROJECTS),
        (["vso.code", "vso.profile"], PROJECTS),
        (["app_token"], PROJECTS),
        ([], CONNECTION_DATA),
    ],
)
def test_the_probe_follows_the_scopes(scopes: list[str], probe: object) -> None:
    assert probe_for(scopes) == probe


def test_a_working_pat_is_valid_and_sent_over_basic_auth(make_harness: MakeHarness) -> None:
    h = make_harness(lambda r: json_response(200, {"authenticatedUser": {"id": "u"}}))
    result = h.client.verify_pat(org="contoso", pat=Secret(PAT_VALUE), scopes=["vso.packaging"])
    assert result.valid is True
    assert result.failure is None
    assert result.probe == "_apis/connectionData"
    request = h.recorder.last
    assert request.url.path == "/contoso/_apis/connectionData"
    assert request.url.params["api-version"]
    expected = base64.b64encode(f":{PAT_VALUE}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert request.headers["accept"] == "application/json"
    assert request.headers["x-tfs-fedauthredirect"] == "Suppress"
    assert h.credential.calls == []  # no Entra token is involved
    assert PAT_VALUE not in repr(result)


def test_projects_probe_asks_for_one_project(make_harness: MakeHarness) -> None:
    h = make_harness(lambda r: json_response(200, {"count": 1, "value": [{"name": "infra"}]}))
    result = h.client.verify_pat(org="contoso", pat=Secret(PAT_VALUE), scopes=["vso.project"])
    assert result.valid is True
    assert h.recorder.last.url.path == "/contoso/_apis/projects"
    assert h.recorder.last.url.params["$top"] == "1"
    assert h.recorder.last.url.params["api-version"] == "7.1"


@pytest.mark.parametrize(
    ("answer", "failure", "detail"),
    [
        (
            json_response(
                401,
                {
                    "message": "Access Denied: The Personal Access Token used has expired.",
                    "typeKey": "AccessCheckException",
                },
            ),
            VerifyFailure.EXPIRED,
            "has expired",
        ),
        (
            httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="https://tfsprod/"'}),
            VerifyFailure.UNAUTHORIZED,
            "HTTP 401",
        ),
        (
            httpx.Response(203, content=SIGN_IN, headers={"content-type": "text/html"}),
            VerifyFailure.SIGN_IN_PAGE,
            "203",
        ),
        (
            httpx.Response(
                302,
                headers={"location": "https://login.example/_signin?realm=x&reply_to=y"},
                content=b"Object moved",
            ),
            VerifyFailure.REDIRECT,
            "sign-in page",
        ),
        (
            httpx.Response(200, content=SIGN_IN, headers={"content-type": "text/html"}),
            VerifyFailure.SIGN_IN_PAGE,
            "HTML page",
        ),
        (httpx.Response(200, content=b"ok"), VerifyFailure.SIGN_IN_PAGE, "not JSON"),
        (httpx.Response(403), VerifyFailure.FORBIDDEN, "HTTP 403"),
    ],
)
def test_invalid_shapes_are_results_not_exceptions(
    make_harness: MakeHarness, answer: httpx.Response, failure: VerifyFailure, detail: str
) -> None:
    h = make_harness(lambda r: answer)
    result = h.client.verify_pat(org="contoso", pat=Secret(PAT_VALUE), scopes=["vso.code"])
    assert result.valid is False
    assert result.failure is failure
    assert detail in result.detail
    assert result.status == answer.status_code
    assert len(h.requests) == 1
    assert PAT_VALUE not in result.detail
    assert "reply_to" not in result.detail


def test_an_unknown_organization_raises(make_harness: MakeHarness) -> None:
    h = make_harness(lambda r: httpx.Response(404))
    with pytest.raises(AzdoNotFound, match="verify a PAT in organization 'nope'"):
        h.client.verify_pat(org="nope", pat=Secret(PAT_VALUE), scopes=["vso.code"])


def test_server_errors_are_retried_then_raised(make_harness: MakeHarness) -> None:
    h = make_harness(lambda r: httpx.Response(503))
    with pytest.raises(AzdoServerError):
        h.client.verify_pat(org="contoso", pat=Secret(PAT_VALUE), scopes=["vso.code"])
    assert len(h.requests) == 4
