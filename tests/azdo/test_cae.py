"""Reading the CAE claims challenge of an Azure DevOps 401 (no I/O)."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from patwarden.azdo.cae import claims_challenge, claims_to_retry
from patwarden.errors import AuthError

CLAIMS = {"access_token": {"nbf": {"essential": True, "value": "1733300000"}}}


def _response(status: int, *headers: str) -> httpx.Response:
    return httpx.Response(status, headers=[("WWW-Authenticate", h) for h in headers])


def _encoded(document: object) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def test_the_claims_of_an_insufficient_claims_challenge_are_decoded() -> None:
    header = (
        'Bearer authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
        f'error="insufficient_claims", claims="{_encoded(CLAIMS)}"'
    )
    decoded = claims_challenge(_response(401, 'Basic realm="x"', header))
    assert decoded is not None
    assert json.loads(decoded) == CLAIMS


def test_other_401s_and_other_statuses_are_not_challenges() -> None:
    plain = 'Bearer authorization_uri="https://login.microsoftonline.com/t", Basic realm="x"'
    assert claims_challenge(_response(401, plain)) is None
    challenge = f'Bearer error="insufficient_claims", claims="{_encoded(CLAIMS)}"'
    assert claims_challenge(_response(403, challenge)) is None
    # claims without the error, or claims that are not base64 JSON, are ignored
    assert claims_challenge(_response(401, f'Bearer claims="{_encoded(CLAIMS)}"')) is None
    assert (
        claims_challenge(_response(401, 'Bearer error="insufficient_claims", claims="@@"')) is None
    )
    not_json = base64.b64encode(b"not json").decode()
    assert (
        claims_challenge(_response(401, f'Bearer error="insufficient_claims", claims="{not_json}"'))
        is None
    )


def test_a_challenge_is_retried_once_only() -> None:
    challenged = _response(401, f'Bearer error="insufficient_claims", claims="{_encoded(CLAIMS)}"')
    first = claims_to_retry(challenged, None, "list PATs")
    assert first is not None
    assert json.loads(first) == CLAIMS
    with pytest.raises(AuthError) as again:
        claims_to_retry(challenged, first, "list PATs")
    assert "refused to list PATs again after a fresh token" in again.value.message
    assert claims_to_retry(_response(200), None, "list PATs") is None
