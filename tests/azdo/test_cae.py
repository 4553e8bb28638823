"""Reading the CAE claims challenge of an Azure DevOps 401 (no I/O)."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from azure.core.credentials import AccessToken

from patwarden.azdo.cae import claims_challenge, claims_to_retry
from patwarden.azdo.transport import AzdoTransport, Bearer
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


class _ClaimsRecordingCredential:
    """Hands out tokens and notes the claims each request for one carried."""

    def __init__(self) -> None:
        self.claims: list[str | None] = []

    def get_token(self, *scopes: str, claims: str | None = None, **kwargs: object) -> AccessToken:
        self.claims.append(claims)
        return AccessToken(f"token-{len(self.claims)}", 1_900_000_000)


def _challenging(times: int) -> tuple[list[httpx.Request], httpx.MockTransport]:
    seen: list[httpx.Request] = []
    header = f'Bearer error="insufficient_claims", claims="{_encoded(CLAIMS)}"'

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) <= times:
            return httpx.Response(401, headers={"WWW-Authenticate": header}, json={})
        return httpx.Response(200, json={"patToken": {}})

    return seen, httpx.MockTransport(answer)


def _create(credential: _ClaimsRecordingCredential, transport: httpx.MockTransport) -> int:
    client = AzdoTransport(credential=credential, http_transport=transport)  # type: ignore[arg-type]
    try:
        response = client.send(
            "POST",
            "https://vssps.example/contoso/_apis/tokens/pats",
            action="create PAT 'x'",
            api_version="7.1-preview.1",
            auth=Bearer(("scope",)),
            body={"displayName": "x"},
            idempotent=False,
        )
    finally:
        client.close()
    return response.status_code


def test_a_challenged_create_is_resent_once_with_a_token_for_the_claims() -> None:
    credential = _ClaimsRecordingCredential()
    seen, transport = _challenging(times=1)
    assert _create(credential, transport) == 200
    assert len(seen) == 2  # the challenge proves nothing was created: resent exactly once
    assert credential.claims[0] is None
    assert credential.claims[1] is not None
    assert json.loads(credential.claims[1]) == CLAIMS
    assert seen[1].headers["Authorization"] == "Bearer token-2"


def test_a_create_challenged_twice_stops_without_a_third_request() -> None:
    credential = _ClaimsRecordingCredential()
    seen, transport = _challenging(times=5)
    with pytest.raises(AuthError) as refused:
        _create(credential, transport)
    assert len(seen) == 2
    assert "refused to create PAT 'x' again after a fresh token" in refused.value.message
