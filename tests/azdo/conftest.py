"""Fakes for the Azure DevOps client tests: a clock that never really sleeps, a credential, and
an httpx.MockTransport wrapper that records every request."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken

from patwarden.azdo import AzureDevOpsClient, RateLimiter, RetryPolicy, ServiceUrls

ADO = "https://ado.example"
VSSPS = "https://vssps.example"
ORG = "contoso"
BEARER = "eyJhbGciOiJSUzI1NiJ9.eyJzY3AiOiJ2c28ucGF0cyJ9.c2lnbmF0dXJlLXNlY3JldA"
PAT_VALUE = "k3zq2m7x4v6c8b1n5l9p0o2i4u6y8t1r3e5w7q9a2s4d6f8g0h1j"

Handler = Callable[[httpx.Request], httpx.Response]


class FakeClock:
    """Unix time that only moves when something sleeps; thread-safe."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def time(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._now += seconds

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


class FakeCredential:
    """A TokenCredential that hands out a fresh, recognisable bearer token per call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls.append(scopes)
        return AccessToken(f"{BEARER}{len(self.calls)}", 1_900_000_000)


@dataclass
class Recorder:
    """Records requests and answers them with *handler*."""

    handler: Handler
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.handler(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


@dataclass
class Harness:
    """A client wired to a recorder, a fake clock and a fake credential."""

    client: AzureDevOpsClient
    recorder: Recorder
    clock: FakeClock
    credential: FakeCredential

    @property
    def requests(self) -> list[httpx.Request]:
        return self.recorder.requests


MakeHarness = Callable[..., Harness]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_harness(clock: FakeClock) -> Iterator[MakeHarness]:
    """Build a client whose network is *handler*; extra keywords go to AzureDevOpsClient."""
    clients: list[AzureDevOpsClient] = []

    def make(handler: Handler, **kwargs: Any) -> Harness:
        recorder = Recorder(handler)
        credential = kwargs.pop("credential", FakeCredential())
        kwargs.setdefault("retry", RetryPolicy())
        kwargs.setdefault("rate_limiter", RateLimiter(clock=clock.time, sleep=clock.sleep))
        client = AzureDevOpsClient(
            credential=credential,
            urls=ServiceUrls(azure_devops_url=ADO, vssps_url=VSSPS),
            http_transport=httpx.MockTransport(recorder),
            rng=random.Random(7),
            **kwargs,
        )
        clients.append(client)
        return Harness(client, recorder, clock, credential)

    yield make
    for client in clients:
        client.close()


def json_response(status: int = 200, body: Any = None, **kwargs: Any) -> httpx.Response:
    return httpx.Response(status, json=body, **kwargs)


def pat_json(
    *,
    authorization_id: str = "4ab5764f-4193-4f1d-b995-64144880b7d7",
    display_name: str = "ci-feed-reader",
    scope: str = "vso.packaging",
    valid_to: str = "2026-07-01T00:00:00Z",
    token: str | None = None,
    is_global: bool = False,
) -> dict[str, Any]:
    return {
        "displayName": display_name,
        "validTo": valid_to,
        "scope": scope,
        "targetAccounts": None if is_global else ["38aaa865-2c70-4bf7-a308-0c6539c38c1a"],
        "validFrom": "2026-06-01T09:12:44.1033333Z",
        "authorizationId": authorization_id,
        "token": token,
    }
