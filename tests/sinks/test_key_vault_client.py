"""The Key Vault client's protocol rules: scope pinning, challenges, retries, paging, bad answers.

Against the emulator, tests/sinks/test_key_vault.py covers what is stored. Here a scripted
``httpx.MockTransport`` plays a vault so each rule can be made to happen exactly once.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from patwarden.secret import Secret
from patwarden.sinks import key_vault_client
from patwarden.sinks.key_vault_answers import (
    VaultAuthFailed,
    VaultError,
    VaultForbidden,
    VaultNoAnswer,
    VaultNotFound,
)
from patwarden.sinks.key_vault_client import KeyVaultSecrets

VAULT = "https://ops-kv.vault.azure.net"
SCOPE = "https://vault.azure.net/.default"
VERSION = "0123456789abcdef0123456789abcdef"


@dataclass
class Credential:
    """Records every token request; tokens expire an hour from now unless told otherwise."""

    calls: list[tuple[tuple[str, ...], dict[str, Any]]] = field(default_factory=list)
    lifetime: int = 3600
    fail: bool = False

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls.append((scopes, kwargs))
        if self.fail:
            raise ClientAuthenticationError(message="AADSTS7000215: Invalid client secret.")
        return AccessToken(f"token-{len(self.calls)}", int(time.time()) + self.lifetime)


def bundle(name: str = "s", version: str = VERSION, **extra: Any) -> dict[str, Any]:
    return {"id": f"{VAULT}/secrets/{name}/{version}", "attributes": {"enabled": True}, **extra}


def vault(
    answers: list[httpx.Response | Callable[[httpx.Request], httpx.Response]],
    credential: Credential | None = None,
) -> tuple[KeyVaultSecrets, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers.pop(0)
        return answer(request) if callable(answer) else answer

    client = KeyVaultSecrets(
        VAULT, credential or Credential(), scope=SCOPE, transport=httpx.MockTransport(handle)
    )
    return client, seen


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(key_vault_client.time, "sleep", slept.append)
    return slept


def test_a_set_sends_what_the_sdk_sends_and_reads_the_version() -> None:
    client, seen = vault([httpx.Response(200, json=bundle(value="v" * 52, contentType="c"))])
    expires = datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)
    info = client.set_secret(
        "s", Secret("v" * 52), content_type="c", tags={"a": "b"}, expires_on=expires
    )
    assert info.version == VERSION
    assert info.value == Secret("v" * 52)
    [request] = seen
    assert (request.method, request.url.path) == ("PUT", "/secrets/s")
    assert request.url.params["api-version"] == key_vault_client.API_VERSION
    assert json.loads(request.content) == {
        "value": "v" * 52,
        "contentType": "c",
        "tags": {"a": "b"},
        "attributes": {"exp": int(expires.timestamp())},
    }
    assert request.headers["authorization"] == "Bearer token-1"
    assert "v" * 52 not in repr(info)


def test_the_token_is_asked_for_the_pinned_scope_only_and_reused() -> None:
    credential = Credential()
    client, _ = vault([httpx.Response(200, json=bundle(value="x"))] * 3, credential)
    for _ in range(3):
        client.get_secret("s")
    assert [scopes for scopes, _ in credential.calls] == [(SCOPE,)]


def test_warming_gets_the_token_the_first_request_then_uses_without_a_request() -> None:
    credential = Credential()
    client, seen = vault([httpx.Response(200, json=bundle(value="x"))], credential)
    client.warm()
    assert [scopes for scopes, _ in credential.calls] == [(SCOPE,)]
    assert seen == [], "warming sends nothing to the vault"
    client.get_secret("s")
    assert len(credential.calls) == 1
    assert seen[0].headers["authorization"] == "Bearer token-1"


def test_a_token_near_expiry_is_replaced() -> None:
    credential = Credential(lifetime=60)  # within the 5-minute margin
    client, _ = vault([httpx.Response(200, json=bundle(value="x"))] * 2, credential)
    client.get_secret("s")
    client.get_secret("s")
    assert len(credential.calls) == 2


def test_a_challenge_naming_another_resource_never_changes_the_scope() -> None:
    challenge = httpx.Response(
        401,
        headers={
            "WWW-Authenticate": 'Bearer authorization="https://login.example/other-tenant", '
            'resource="https://app.vssps.visualstudio.com"'
        },
    )
    credential = Credential()
    ok = httpx.Response(200, json=bundle(value="x"))
    client, seen = vault([challenge, ok, ok], credential)
    client.get_secret("s")
    assert [scopes for scopes, _ in credential.calls] == [(SCOPE,), (SCOPE,)]
    assert credential.calls[1][1]["tenant_id"] == "other-tenant"  # the SDK's tenant discovery
    assert seen[1].headers["authorization"] == "Bearer token-2"
    client.get_secret("s")  # the tenant's token is kept: no second challenge
    assert len(seen) == 3
    assert seen[2].headers["authorization"] == "Bearer token-2"


def test_a_cae_claims_challenge_is_answered_once_then_refused() -> None:
    claims = base64.b64encode(b'{"access_token":{"nbf":{"essential":true}}}').decode()
    challenge = httpx.Response(
        401,
        headers={
            "WWW-Authenticate": f'Bearer error="insufficient_claims", claims="{claims}"',
        },
        json={"error": {"code": "Unauthorized", "message": "token revoked"}},
    )
    credential = Credential()
    client, seen = vault([challenge, challenge], credential)
    with pytest.raises(VaultAuthFailed, match="HTTP 401 Unauthorized: token revoked"):
        client.get_secret("s")
    assert len(seen) == 2
    assert "claims" in credential.calls[1][1]


def test_a_credential_failure_is_an_auth_failure_without_the_traceback() -> None:
    client, seen = vault([], Credential(fail=True))
    with pytest.raises(VaultAuthFailed, match="AADSTS7000215"):
        client.get_secret("s")
    assert seen == []


def test_throttling_waits_as_the_vault_says_then_succeeds(no_sleep: list[float]) -> None:
    throttled = httpx.Response(429, headers={"Retry-After": "7"})
    client, seen = vault([throttled, httpx.Response(200, json=bundle(value="x"))])
    assert client.get_secret("s").version == VERSION
    assert no_sleep == [7.0]
    assert len(seen) == 2


def test_a_wait_longer_than_a_minute_fails_now(no_sleep: list[float]) -> None:
    client, _ = vault([httpx.Response(429, headers={"Retry-After": "600"})])
    with pytest.raises(VaultError) as caught:
        client.get_secret("s")
    assert caught.value.status == 429
    assert no_sleep == []


def test_server_errors_are_retried_three_times_then_raised(no_sleep: list[float]) -> None:
    client, seen = vault([httpx.Response(503)] * 4)
    with pytest.raises(VaultError) as caught:
        client.get_secret("s")
    assert caught.value.status == 503
    assert len(seen) == 4
    assert len(no_sleep) == 3
    assert all(0 < delay <= key_vault_client.BACKOFF_MAX for delay in no_sleep)


def test_no_answer_says_whether_the_request_may_have_arrived() -> None:
    def reset(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("connection reset", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client, seen = vault([reset] * 4)
    with pytest.raises(VaultNoAnswer, match="after 4 tries") as caught:
        client.set_secret("s", Secret("v" * 52))
    assert caught.value.sent is True
    assert len(seen) == 4
    client, _ = vault([refused] * 4)
    with pytest.raises(VaultNoAnswer) as caught:
        client.get_secret("s")
    assert caught.value.sent is False


@pytest.mark.parametrize(
    ("answer", "error", "detail"),
    [
        (
            httpx.Response(404, json={"error": {"code": "SecretNotFound", "message": "gone"}}),
            VaultNotFound,
            "HTTP 404 SecretNotFound: gone",
        ),
        (
            httpx.Response(403, json={"error": {"code": "Forbidden", "message": "no role"}}),
            VaultForbidden,
            "HTTP 403 Forbidden: no role",
        ),
        (httpx.Response(200, text="<html>sign in</html>"), VaultNoAnswer, "not a JSON object"),
        (httpx.Response(200, json={"value": "x"}), VaultNoAnswer, "without the version's id"),
        (httpx.Response(400, text="bad"), VaultError, "HTTP 400"),
    ],
    ids=["not-found", "forbidden", "html", "no-id", "bad-request"],
)
def test_error_answers_become_typed_errors(
    answer: httpx.Response, error: type[VaultError], detail: str
) -> None:
    client, _ = vault([answer])
    with pytest.raises(error, match=detail):
        client.get_secret("s")


def test_a_disabled_version_is_told_apart_from_a_missing_permission() -> None:
    disabled = httpx.Response(
        403,
        json={
            "error": {
                "code": "Forbidden",
                "message": "Operation get is not allowed on a disabled secret.",
                "innererror": {"code": "SecretDisabled"},
            }
        },
    )
    client, _ = vault([disabled])
    with pytest.raises(VaultForbidden) as caught:
        client.get_secret("s")
    assert caught.value.disabled


def test_versions_are_listed_across_pages_within_the_vault_only() -> None:
    first = {"value": [bundle(version="a" * 32)], "nextLink": f"{VAULT}/secrets/s/versions?p=2"}
    second = {"value": [bundle(version="b" * 32, tags={"k": "v"})], "nextLink": None}
    client, seen = vault([httpx.Response(200, json=first), httpx.Response(200, json=second)])
    listed = list(client.list_versions("s"))
    assert [(i.version, dict(i.tags)) for i in listed] == [("a" * 32, {}), ("b" * 32, {"k": "v"})]
    assert seen[1].url == httpx.URL(f"{VAULT}/secrets/s/versions?p=2")

    elsewhere = {"value": [], "nextLink": "https://attacker.example/secrets/s/versions"}
    client, seen = vault([httpx.Response(200, json=elsewhere)])
    with pytest.raises(VaultError, match="outside the vault"):
        list(client.list_versions("s"))
    assert len(seen) == 1  # the bearer token never went to the other host


def test_names_and_versions_are_escaped_into_one_path_segment() -> None:
    client, seen = vault([httpx.Response(200, json=bundle(value="x"))])
    client.get_secret("s", "../../keys/k")
    assert seen[0].url.raw_path.startswith(b"/secrets/s/..%2F..%2Fkeys%2Fk?")


def test_a_retry_after_date_is_read_against_the_answers_date(no_sleep: list[float]) -> None:
    throttled = httpx.Response(
        503,
        headers={
            "Date": "Fri, 04 Dec 2026 10:00:00 GMT",
            "Retry-After": "Fri, 04 Dec 2026 10:00:05 GMT",
        },
    )
    client, _ = vault([throttled, httpx.Response(200, json=bundle(value="x"))])
    client.get_secret("s")
    assert no_sleep == [5.0]
