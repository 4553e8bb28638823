from __future__ import annotations

import email.utils
import json
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.exceptions import ClientAuthenticationError

from patwarden import __version__
from patwarden.azdo import (
    DEFAULT_SCOPE,
    PAT_MANAGE_SCOPE,
    PAT_READ_SCOPE,
    AzdoAccessDenied,
    AzdoBadRequest,
    AzdoConnectionError,
    AzdoNotFound,
    AzdoRateLimited,
    AzdoServerError,
    RateLimiter,
    RequestOutcomeUnknown,
    RetryPolicy,
)
from patwarden.azdo.transport import AzdoTransport, BasicPat, Bearer
from patwarden.errors import AuthError, ConfigError
from patwarden.secret import Secret
from patwarden.tls import ssl_context

from .conftest import ADO, BEARER, FakeClock, Harness, MakeHarness, json_response

URL = f"{ADO}/contoso/_apis/projects"


def send(h: Harness, *, method: str = "GET", idempotent: bool = True) -> httpx.Response:
    return h.client.transport.send(
        method,
        URL,
        action="list projects in organization 'contoso'",
        api_version="7.1",
        auth=Bearer((DEFAULT_SCOPE,)),
        params={"$top": 1, "flag": True, "skip": None},
        idempotent=idempotent,
    )


def sequence(*answers: httpx.Response | Exception) -> Any:
    """A handler answering with each item in turn (exceptions are raised)."""
    remaining = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        answer = remaining.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler


def test_every_request_carries_identity_headers_and_api_version(make_harness: MakeHarness) -> None:
    h = make_harness(lambda r: json_response(200, {"value": []}))
    send(h)
    request = h.recorder.last
    assert request.headers["user-agent"] == f"patwarden/{__version__}"
    assert request.headers["accept"] == "application/json"
    assert request.headers["x-tfs-fedauthredirect"] == "Suppress"
    assert request.headers["authorization"] == f"Bearer {BEARER}1"
    assert request.url.params["api-version"] == "7.1"
    assert request.url.params["$top"] == "1"
    assert request.url.params["flag"] == "true"
    assert "skip" not in request.url.params


def test_a_token_is_fetched_for_every_request(make_harness: MakeHarness) -> None:
    h = make_harness(lambda r: json_response(200, {}))
    send(h)
    send(h)
    assert h.credential.calls == [(DEFAULT_SCOPE,), (DEFAULT_SCOPE,)]
    assert [r.headers["authorization"][-1] for r in h.requests] == ["1", "2"]


def test_pat_calls_ask_for_pat_scopes_and_others_for_the_configured_default(
    make_harness: MakeHarness,
) -> None:
    custom = "499b84ac-1321-427f-aa17-267ca6975798/vso.variablegroups_manage"
    h = make_harness(
        lambda r: json_response(200, {"patTokens": [], "value": []}), default_scopes=(custom,)
    )
    list(h.client.pats.list_tokens(org="contoso"))
    list(h.client.graph.iter_users(org="contoso"))
    assert h.credential.calls == [(PAT_READ_SCOPE, PAT_MANAGE_SCOPE), (custom,)]


def test_get_is_retried_on_5xx_with_jittered_exponential_backoff(
    make_harness: MakeHarness, clock: FakeClock
) -> None:
    h = make_harness(
        sequence(
            httpx.Response(500), httpx.Response(502), httpx.Response(504), json_response(200, {})
        )
    )
    assert send(h).status_code == 200
    assert len(h.requests) == 4
    assert len(clock.sleeps) == 3
    for n, delay in enumerate(clock.sleeps, start=1):
        ceiling = 0.5 * 2 ** (n - 1)
        assert ceiling / 2 <= delay <= ceiling


def test_retries_are_bounded(make_harness: MakeHarness) -> None:
    h = make_harness(lambda r: httpx.Response(503), retry=RetryPolicy(attempts=3))
    with pytest.raises(AzdoServerError, match="after 3 attempts"):
        send(h)
    assert len(h.requests) == 3


def test_backoff_is_capped(make_harness: MakeHarness, clock: FakeClock) -> None:
    h = make_harness(
        lambda r: httpx.Response(500),
        retry=RetryPolicy(attempts=6, base_delay=1, max_delay=3),
    )
    with pytest.raises(AzdoServerError):
        send(h)
    assert max(clock.sleeps) <= 3
    assert len(clock.sleeps) == 5


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, AzdoBadRequest),
        (401, AzdoAccessDenied),
        (403, AzdoAccessDenied),
        (404, AzdoNotFound),
        (501, AzdoServerError),
    ],
)
def test_client_errors_and_501_are_not_retried(
    make_harness: MakeHarness, status: int, error: type[Exception]
) -> None:
    h = make_harness(lambda r: httpx.Response(status))
    with pytest.raises(error):
        send(h)
    assert len(h.requests) == 1


def test_429_retry_after_is_honoured_for_the_whole_identity(
    make_harness: MakeHarness, clock: FakeClock
) -> None:
    limiter = RateLimiter(clock=clock.time, sleep=clock.sleep)
    start = clock.time()
    h = make_harness(
        sequence(httpx.Response(429, headers={"Retry-After": "7"}), json_response(200, {})),
        rate_limiter=limiter,
    )
    other = make_harness(lambda r: json_response(200, {}), rate_limiter=limiter)
    assert send(h).status_code == 200
    assert clock.sleeps == [7.0]
    assert clock.time() == start + 7
    # A 429 for one client pauses every client of the identity:
    limiter.observe(httpx.Headers({"Retry-After": "4"}))
    send(other)
    assert clock.sleeps == [7.0, 4.0]


def test_429_without_headers_pauses_the_identity_by_the_backoff(
    make_harness: MakeHarness, clock: FakeClock
) -> None:
    h = make_harness(sequence(httpx.Response(429), json_response(200, {})))
    send(h)
    assert len(clock.sleeps) == 1
    assert 0.25 <= clock.sleeps[0] <= 0.5


def test_remaining_zero_on_a_success_delays_the_next_request_until_reset(
    make_harness: MakeHarness, clock: FakeClock
) -> None:
    reset = clock.time() + 30
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}
    h = make_harness(sequence(json_response(200, {}, headers=headers), json_response(200, {})))
    send(h)
    assert clock.sleeps == []
    send(h)
    assert clock.sleeps == [30.0]


def test_retry_after_on_a_200_is_honoured(make_harness: MakeHarness, clock: FakeClock) -> None:
    h = make_harness(
        sequence(json_response(200, {}, headers={"Retry-After": "2"}), json_response(200, {}))
    )
    send(h)
    send(h)
    assert clock.sleeps == [2.0]


def test_an_advised_wait_beyond_the_limit_fails_fast(
    make_harness: MakeHarness, clock: FakeClock
) -> None:
    h = make_harness(lambda r: httpx.Response(429, headers={"Retry-After": "3600"}))
    with pytest.raises(AzdoRateLimited, match="3600 s"):
        send(h)
    assert clock.sleeps == []
    assert len(h.requests) == 1


@pytest.mark.parametrize("with_date", [True, False])
@pytest.mark.parametrize("behind", [1.0, 3.0, 5.0])
def test_a_reset_wait_equal_to_the_limit_passes_with_the_client_clock_behind(
    make_harness: MakeHarness, clock: FakeClock, behind: float, with_date: bool
) -> None:
    """The bug: Reset 300 s ahead of the service (= max_advised_wait) read against a client
    clock 1 s behind made a 301 s wait, over the limit: every remaining token failed."""
    service_now = clock.time() + behind
    headers = {
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(int(service_now + 300)),
    }
    if with_date:  # read against the service's own clock: exactly 300 s
        headers["Date"] = email.utils.formatdate(service_now, usegmt=True)
    h = make_harness(sequence(httpx.Response(429, headers=headers), json_response(200, {})))
    assert send(h).status_code == 200
    assert clock.sleeps == [300.0 if with_date else 300.0 + behind]


@pytest.mark.parametrize(
    "error",
    [
        httpx.ReadTimeout("timed out"),
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("timed out"),
        httpx.RemoteProtocolError("connection reset"),
        httpx.ReadError("reset by peer"),
    ],
)
def test_idempotent_requests_survive_timeouts_and_resets(
    make_harness: MakeHarness, error: Exception
) -> None:
    h = make_harness(sequence(error, json_response(200, {})))
    assert send(h).status_code == 200
    assert len(h.requests) == 2


def test_persistent_network_failure_is_a_connection_error(make_harness: MakeHarness) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    h = make_harness(handler)
    with pytest.raises(AzdoConnectionError, match="after 4 attempts") as info:
        send(h)
    assert "ConnectError" in str(info.value)
    assert len(h.requests) == 4


def test_untrusted_certificates_are_not_retried_and_point_at_ca_bundle(
    make_harness: MakeHarness,
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")

    h = make_harness(handler)
    with pytest.raises(AzdoConnectionError, match="not trusted") as info:
        send(h)
    assert "ca_bundle" in (info.value.hint or "")
    assert len(h.requests) == 1


@pytest.mark.parametrize(
    "error",
    [httpx.ReadTimeout("timed out"), httpx.RemoteProtocolError("reset"), httpx.WriteError("x")],
)
def test_non_idempotent_requests_are_not_resent_once_sent(
    make_harness: MakeHarness, error: Exception
) -> None:
    h = make_harness(sequence(error, json_response(200, {})))
    with pytest.raises(RequestOutcomeUnknown, match="not idempotent"):
        send(h, method="POST", idempotent=False)
    assert len(h.requests) == 1


def test_non_idempotent_requests_are_retried_when_never_sent(make_harness: MakeHarness) -> None:
    h = make_harness(sequence(httpx.ConnectError("refused"), json_response(200, {})))
    assert send(h, method="POST", idempotent=False).status_code == 200
    assert len(h.requests) == 2


@pytest.mark.parametrize(
    ("first", "retried"),
    [
        (httpx.Response(429), True),
        (httpx.Response(503, headers={"Retry-After": "1"}), True),
        (httpx.Response(503), False),
        (httpx.Response(500), False),
        (httpx.Response(502), False),
        (httpx.Response(504), False),
    ],
)
def test_non_idempotent_retry_only_when_refused_before_acting(
    make_harness: MakeHarness, first: httpx.Response, retried: bool
) -> None:
    h = make_harness(sequence(first, json_response(200, {})))
    if retried:
        assert send(h, method="POST", idempotent=False).status_code == 200
        assert len(h.requests) == 2
    else:
        with pytest.raises(RequestOutcomeUnknown, match=f"HTTP {first.status_code}"):
            send(h, method="POST", idempotent=False)
        assert len(h.requests) == 1


def test_credential_failures_become_auth_errors(make_harness: MakeHarness) -> None:
    class Broken:
        def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            raise ClientAuthenticationError(
                "AADSTS700082: The refresh token has expired due to inactivity.\nTrace ID: x"
            )

    h = make_harness(lambda r: json_response(200, {}), credential=Broken())
    with pytest.raises(AuthError, match="AADSTS700082") as info:
        send(h)
    assert "Trace ID" not in str(info.value)
    assert h.requests == []


def test_no_credential_is_a_config_error(make_harness: MakeHarness) -> None:
    h = make_harness(lambda r: json_response(200, {}), credential=None)
    with pytest.raises(ConfigError, match="no Entra credential"):
        send(h)


def test_tls_verification_uses_the_ca_bundle_and_is_never_off(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import trustme

    seen: list[Any] = []
    real_transport = httpx.HTTPTransport

    def spy(**kwargs: Any) -> httpx.HTTPTransport:
        seen.append(kwargs["verify"])
        return real_transport(**kwargs)

    monkeypatch.setattr(httpx, "HTTPTransport", spy)
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    once = RetryPolicy(attempts=1)
    for transport in (
        AzdoTransport(credential=None, ca_bundle=bundle, retry=once),
        AzdoTransport(credential=None, retry=once),
    ):
        with pytest.raises(AzdoConnectionError):  # nothing listens there: the transport is built
            transport.send(
                "GET",
                "https://127.0.0.1:9/x",
                action="probe",
                api_version="7.1",
                auth=BasicPat(Secret("p")),
            )
        transport.close()
    for verify in seen:  # with the bundle, then the default store: verification on in both
        assert isinstance(verify, ssl.SSLContext)
        assert verify.verify_mode is ssl.CERT_REQUIRED
        assert verify.check_hostname is True
    assert seen[0] is not seen[1]
    assert seen[1] is ssl_context(None), "the process's one default context, not one per transport"


def test_a_missing_ca_bundle_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Cannot use CA bundle"):
        AzdoTransport(credential=None, ca_bundle=tmp_path / "missing.pem")


def test_retry_policy_validation() -> None:
    with pytest.raises(ConfigError, match="attempts must be >= 1"):
        RetryPolicy(attempts=0)


# --- hostile bodies (found by tests/reliability: the client read them forever) -----------------


def test_an_endless_body_is_cut_off_at_the_cap(make_harness: MakeHarness) -> None:
    served: list[int] = []

    def endless() -> Iterator[bytes]:
        while True:
            served.append(1)
            yield b" " * (1 << 20)

    h = make_harness(
        lambda r: httpx.Response(200, content=endless()), retry=RetryPolicy(attempts=2)
    )
    with pytest.raises(AzdoConnectionError, match="larger than 32 MiB"):
        send(h)
    assert len(h.requests) == 2, "an idempotent request is retried like any broken answer"
    assert len(served) <= 2 * 33, f"read {len(served)} MiB"


def test_an_endless_body_to_a_create_is_an_unknown_outcome(make_harness: MakeHarness) -> None:
    def endless() -> Iterator[bytes]:
        while True:
            yield b" " * (1 << 20)

    h = make_harness(lambda r: httpx.Response(200, content=endless()))
    with pytest.raises(RequestOutcomeUnknown, match="larger than 32 MiB"):
        send(h, method="POST", idempotent=False)
    assert len(h.requests) == 1


def test_a_dripping_body_must_arrive_within_the_deadline(make_harness: MakeHarness) -> None:
    def drip() -> Iterator[bytes]:
        for _ in range(2000):
            time.sleep(0.005)
            yield b" "

    h = make_harness(
        lambda r: httpx.Response(200, content=drip()),
        retry=RetryPolicy(attempts=1),
        timeout=httpx.Timeout(0.05),
    )
    started = time.monotonic()
    with pytest.raises(AzdoConnectionError, match=r"still arriving after 0\.2 s"):
        send(h)
    assert time.monotonic() - started < 2, "4 read timeouts, not the 10 s the drip lasts"


def test_a_streamed_answer_keeps_status_headers_and_decoded_body(make_harness: MakeHarness) -> None:
    import gzip

    body = json.dumps({"value": [1, 2]}).encode()
    h = make_harness(
        lambda r: httpx.Response(
            200,
            content=gzip.compress(body),
            headers={"Content-Encoding": "gzip", "X-RateLimit-Remaining": "7"},
        )
    )
    response = send(h)
    assert response.json() == {"value": [1, 2]}
    assert response.headers["x-ratelimit-remaining"] == "7"
    assert "content-encoding" not in response.headers
