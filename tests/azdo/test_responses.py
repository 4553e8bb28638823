from __future__ import annotations

from typing import Any

import httpx
import pytest

from patwarden.azdo.errors import (
    AzdoAccessDenied,
    AzdoBadRequest,
    AzdoNotFound,
    AzdoRateLimited,
    AzdoRequestError,
    AzdoServerError,
    AzdoUnexpectedResponse,
    EntraTokenRequired,
    ServicePrincipalNotAllowed,
)
from patwarden.azdo.responses import error_for_response, json_body, sign_in_problem, vss_error
from patwarden.errors import AuthError

URL = "https://vssps.example/contoso/_apis/tokens/pats?api-version=7.1-preview.1"
ACTION = "list PATs in organization 'contoso'"
SIGN_IN_HTML = b"<html><head><title>Azure DevOps Services | Sign In</title></head></html>"


def envelope(message: str, type_key: str) -> dict[str, Any]:
    return {
        "$id": "1",
        "innerException": None,
        "message": message,
        "typeName": f"Microsoft.TeamFoundation.Framework.Server.{type_key}, x",
        "typeKey": type_key,
        "errorCode": 0,
        "eventId": 3000,
    }


def response(status: int, **kwargs: Any) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("GET", URL), **kwargs)


@pytest.mark.parametrize("status", [401, 403])
def test_service_principal_refusal_explains_user_tokens(status: int) -> None:
    body = envelope(
        "Service principals are not allowed to perform this action.", "InvalidAccessException"
    )
    error = error_for_response(response(status, json=body), action=ACTION)
    assert isinstance(error, ServicePrincipalNotAllowed)
    assert isinstance(error, AuthError)
    assert error.status == status
    assert "accepts only a user's delegated Entra token" in error.message
    assert "patwarden login --identity rotator" in (error.hint or "")


@pytest.mark.parametrize("status", [401, 403])
def test_pat_over_basic_refusal_asks_for_an_entra_token(status: int) -> None:
    body = envelope("The requested operation is not allowed.", "InvalidAccessException")
    error = error_for_response(response(status, json=body), action=ACTION)
    assert isinstance(error, EntraTokenRequired)
    assert "PAT or Basic credential" in error.message
    assert "a PAT cannot be used to manage PATs" in (error.hint or "")


def test_other_invalid_access_is_generic_access_denied() -> None:
    body = envelope("Something else entirely.", "InvalidAccessException")
    error = error_for_response(response(403, json=body), action=ACTION)
    assert type(error) is AzdoAccessDenied
    assert "Something else entirely." in error.message


def test_tf400813_401_is_access_denied_with_login_hint() -> None:
    body = envelope(
        "TF400813: The user '' is not authorized to access this resource.",
        "UnauthorizedRequestException",
    )
    error = error_for_response(response(401, json=body), action=ACTION)
    assert type(error) is AzdoAccessDenied
    assert error.type_key == "UnauthorizedRequestException"
    assert "TF400813" in error.message
    assert "HTTP 401" in error.message
    assert "patwarden login" in (error.hint or "")


def test_403_mentions_permission_or_scope() -> None:
    error = error_for_response(response(403), action=ACTION)
    assert type(error) is AzdoAccessDenied
    assert "lacks the permission or token scope" in error.message


def test_203_sign_in_html_is_access_denied() -> None:
    error = error_for_response(
        response(203, content=SIGN_IN_HTML, headers={"content-type": "text/html"}), action=ACTION
    )
    assert type(error) is AzdoAccessDenied
    assert "HTTP 203 with a sign-in page" in error.message
    assert "<html" not in str(error)


def test_302_to_signin_is_access_denied_without_query_string() -> None:
    location = "https://vssps.example/_signin?realm=vssps.dev.azure.com&reply_to=secret%3Dx"
    error = error_for_response(
        response(302, headers={"location": location}, content=b"Object moved"), action=ACTION
    )
    assert isinstance(error, AzdoAccessDenied)
    assert "redirect to a sign-in page (https://vssps.example/_signin)" in error.message
    assert "reply_to" not in str(error)


def test_tf400898_is_reported_as_a_patwarden_bug() -> None:
    body = envelope("TF400898: An Internal Error Occurred. Activity Id: x.", "JsonReaderException")
    error = error_for_response(response(400, json=body), action=ACTION)
    assert isinstance(error, AzdoBadRequest)
    assert "TF400898" in error.message
    assert "patwarden bug" in (error.hint or "")


def test_plain_400_quotes_the_server_message() -> None:
    error = error_for_response(response(400, json=envelope("Bad thing.", "X")), action=ACTION)
    assert type(error) is AzdoBadRequest
    assert "Server said: Bad thing." in error.message


def test_404_names_the_path() -> None:
    error = error_for_response(response(404), action=ACTION)
    assert isinstance(error, AzdoNotFound)
    assert "GET /contoso/_apis/tokens/pats" in error.message
    assert "vssps_url" in (error.hint or "")


def test_429_and_5xx_mention_attempts() -> None:
    limited = error_for_response(response(429), action=ACTION, attempts=4)
    assert isinstance(limited, AzdoRateLimited)
    assert "after 4 attempts" in limited.message
    failed = error_for_response(response(503), action=ACTION, attempts=4)
    assert isinstance(failed, AzdoServerError)
    assert "HTTP 503" in failed.message


def test_other_statuses_are_generic_request_errors() -> None:
    error = error_for_response(response(409), action=ACTION)
    assert type(error) is AzdoRequestError
    assert error.status == 409


def test_service_error_header_is_an_envelope_fallback() -> None:
    resp = response(
        401, headers={"X-TFS-ServiceError": "Access%20Denied%3A%20The%20PAT%20has%20expired."}
    )
    found = vss_error(resp)
    assert found is not None
    assert found.message == "Access Denied: The PAT has expired."


def test_json_body_refuses_html_and_non_json() -> None:
    with pytest.raises(AzdoAccessDenied, match="HTML page"):
        json_body(response(200, content=b"  <!DOCTYPE html><html>"), action=ACTION)
    with pytest.raises(AzdoUnexpectedResponse, match="not JSON"):
        json_body(response(200, content=b"{broken"), action=ACTION)
    assert json_body(response(200, json={"a": 1}), action=ACTION) == {"a": 1}


def test_sign_in_problem_is_none_for_json() -> None:
    assert sign_in_problem(response(200, json={})) is None
    assert sign_in_problem(response(307, headers={"location": "https://x/other"})) == (
        "HTTP 307, a redirect to another page (https://x/other)"
    )
