from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

import patwarden.azdo
from patwarden.azdo import AzureDevOpsClient, ServiceUrls
from patwarden.azdo.variable_groups import secret_update
from patwarden.errors import PatwardenError
from patwarden.secret import Secret

from .conftest import BEARER, PAT_VALUE, MakeHarness, json_response, pat_json

BASIC = base64.b64encode(f":{PAT_VALUE}".encode()).decode()
SECRETS = (PAT_VALUE, BEARER, BASIC)


def test_exports_are_sorted_and_importable() -> None:
    names = patwarden.azdo.__all__
    assert list(names) == sorted(names, key=lambda n: (not n.isupper(), n))
    for name in names:
        assert getattr(patwarden.azdo, name) is not None


def test_default_urls_are_real_azure_and_configurable() -> None:
    assert ServiceUrls() == ServiceUrls(
        azure_devops_url="https://dev.azure.com", vssps_url="https://vssps.dev.azure.com"
    )
    emulated = ServiceUrls(
        azure_devops_url="https://127.0.0.1:8443/devops/", vssps_url="https://127.0.0.1:8443/vssps"
    )
    assert emulated.azure_devops_url == "https://127.0.0.1:8443/devops"


def test_context_manager_closes_the_pool() -> None:
    class Recording(httpx.MockTransport):
        closed = False

        def close(self) -> None:
            self.closed = True

    transport = Recording(lambda r: httpx.Response(200))
    with AzureDevOpsClient(credential=None, http_transport=transport):
        assert not transport.closed
    assert transport.closed


def _echoing(request: httpx.Request) -> httpx.Response:
    """A hostile server: echoes the Authorization header and the body into its answers."""
    echoed = f"{request.headers.get('authorization')} {request.content.decode(errors='replace')}"
    path = request.url.path
    if request.method == "POST" and path.endswith("/tokens/pats"):
        return json_response(200, {"patToken": pat_json(token=PAT_VALUE), "patTokenError": "none"})
    if "variablegroups" in path and request.method == "PUT":
        return json_response(400, {"message": echoed, "typeKey": "ArgumentException"})
    if "variablegroups" in path:
        return json_response(
            200,
            {"id": 1, "name": "g", "variables": {"PAT": {"value": None, "isSecret": True}}},
        )
    if path.endswith("connectionData"):
        return json_response(401, {"message": f"Denied for {echoed}", "typeKey": "X"})
    return json_response(500, {"message": echoed, "typeKey": "Boom"})


def _flows(client: AzureDevOpsClient) -> list[Callable[[], Any]]:
    group_update = secret_update(
        client.variable_groups.get(org="contoso", project="infra", group_id=1),
        variable="PAT",
        value=Secret(PAT_VALUE),
    )
    return [
        lambda: client.pats.create(
            org="contoso",
            display_name="x",
            scopes=["vso.code"],
            valid_to=datetime(2026, 7, 1, tzinfo=UTC),
        ),
        lambda: client.variable_groups.put(org="contoso", update=group_update),
        lambda: client.verify_pat(org="contoso", pat=Secret(PAT_VALUE), scopes=["vso.code"]),
        lambda: list(client.pats.list_tokens(org="contoso")),
    ]


def test_no_secret_reaches_logs_errors_or_reprs(
    make_harness: MakeHarness, caplog: pytest.LogCaptureFixture
) -> None:
    h = make_harness(_echoing)
    seen: list[str] = []
    with caplog.at_level(logging.DEBUG):
        for flow in _flows(h.client):
            try:
                seen.append(repr(flow()))
            except PatwardenError as err:
                seen.extend([str(err), repr(err), repr(err.__cause__), repr(err.__context__)])
    seen.append(caplog.text)
    seen.append(repr(h.client))
    assert len(seen) >= 6
    text = "\n".join(seen)
    assert "[redacted]" in text  # the echoed headers were caught, not silently absent
    for secret in SECRETS:
        assert secret not in text
    # The requests did carry the credentials: the test would be meaningless otherwise.
    sent = " ".join(r.headers.get("authorization", "") for r in h.requests)
    assert BEARER in sent
    assert BASIC in sent


def test_one_client_serves_a_worker_pool(make_harness: MakeHarness) -> None:
    h = make_harness(
        lambda r: json_response(200, {"patTokens": [pat_json()], "continuationToken": ""})
    )

    def work(_: int) -> int:
        return len(list(h.client.pats.list_tokens(org="contoso")))

    with ThreadPoolExecutor(max_workers=8) as pool:
        counts = list(pool.map(work, range(32)))
    assert counts == [1] * 32
    assert len(h.requests) == 32
    assert len(h.credential.calls) == 32
