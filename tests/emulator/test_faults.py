"""Fault injection against the real emulator process, observed through real httpx clients."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.conftest import RunningEmulator
from tests.support.tokens import minted_token

LIST = "/secrets?api-version=7.5"  # answered 401 without a token: the service acts, nothing changes


def add_fault(emulator: RunningEmulator, **spec: Any) -> dict[str, Any]:
    response = emulator.admin("POST", "/faults", json=spec)
    assert response.status_code == 201
    rule: dict[str, Any] = response.json()
    return rule


def get(emulator: RunningEmulator, path: str, *, timeout: float = 10) -> httpx.Response:
    with emulator.http() as client:
        return client.get(emulator["key_vault_url"] + path, timeout=timeout)


def officer_headers(emulator: RunningEmulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {minted_token(emulator, 'service_principal')}"}


def put_secret(emulator: RunningEmulator, name: str, value: str) -> httpx.Response:
    with emulator.http() as client:
        return client.put(
            f"{emulator['key_vault_url']}/secrets/{name}?api-version=7.5",
            json={"value": value},
            headers=officer_headers(emulator),
        )


def stored_values(emulator: RunningEmulator, name: str) -> list[str]:
    with emulator.http() as client:
        response = client.get(f"{emulator['admin_url']}/key-vault/secrets/{name}")
    if response.status_code == 404:
        return []
    return [version["value"] for version in response.json()["versions"]]


def wait_until_held(emulator: RunningEmulator, count: int = 1) -> None:
    deadline = time.monotonic() + 10
    while emulator.admin("GET", "/faults/held").json()["held"] < count:
        assert time.monotonic() < deadline, "the request was never parked"
        time.sleep(0.02)


def test_status_faults_answer_in_each_services_error_shape(emulator: RunningEmulator) -> None:
    add_fault(emulator, route="^GET /secrets", kind="status", status=503)
    add_fault(emulator, route="^GET /devops/", kind="status", status=500)
    add_fault(emulator, route="/oauth2/", kind="status", status=504)

    vault = get(emulator, LIST)
    assert vault.status_code == 503
    assert vault.json()["error"]["code"] == "ServiceUnavailable"
    assert vault.headers["x-ms-error-code"] == "ServiceUnavailable"

    devops = get(emulator, "/devops/contoso/_apis/connectionData")
    assert devops.status_code == 500
    assert {"$id", "message", "typeName", "typeKey", "errorCode"} <= set(devops.json())

    entra = get(emulator, f"/{emulator['tenant_id']}/oauth2/v2.0/token")
    assert entra.status_code == 504
    assert entra.json()["error"] == "temporarily_unavailable"


def test_throttle_fault_sends_retry_after_and_rate_limit_headers(emulator: RunningEmulator) -> None:
    add_fault(emulator, route="^GET /devops/", kind="throttle", retry_after=7)
    response = get(emulator, "/devops/contoso/_apis/projects")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert int(response.headers["X-RateLimit-Reset"]) >= int(time.time()) + 6
    assert response.headers["X-RateLimit-Resource"]
    assert int(response.headers["X-RateLimit-Limit"]) > 0
    assert response.json()["message"].startswith("TF400733: The request has been canceled: ")


def test_reset_fault_breaks_the_connection_without_a_response(emulator: RunningEmulator) -> None:
    add_fault(emulator, route="^GET /secrets$", kind="reset", count=1)
    with pytest.raises(httpx.TransportError) as raised:
        get(emulator, LIST)
    assert not isinstance(raised.value, httpx.TimeoutException)
    assert get(emulator, LIST).status_code == 401  # count=1: the next request is served
    log = emulator.admin("GET", "/requests").json()["requests"]
    assert [(e["status"], (e["fault"] or {}).get("kind")) for e in log] == [
        (None, "reset"),
        (401, None),
    ]


def test_timeout_fault_holds_then_drops_the_response(emulator: RunningEmulator) -> None:
    add_fault(emulator, route="^GET /secrets$", kind="timeout", latency_ms=300, count=1)
    started = time.monotonic()
    with pytest.raises(httpx.TransportError):
        get(emulator, LIST)
    assert time.monotonic() - started >= 0.3

    add_fault(emulator, route="^GET /secrets$", kind="timeout", count=1)  # 60 s by default
    with pytest.raises(httpx.ReadTimeout):
        get(emulator, LIST, timeout=0.3)


def test_latency_fault_delays_a_normal_response(emulator: RunningEmulator) -> None:
    add_fault(emulator, route="^GET /secrets$", kind="latency", latency_ms=300)
    started = time.monotonic()
    assert get(emulator, LIST).status_code == 401
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize("kind", ["status", "reset"])
def test_after_fault_loses_the_response_but_not_the_change(
    emulator: RunningEmulator, kind: str
) -> None:
    add_fault(emulator, route="^PUT /secrets/lost-response$", kind=kind, after=True, count=1)
    if kind == "status":
        assert put_secret(emulator, "lost-response", "created").status_code == 503
    else:
        with pytest.raises(httpx.TransportError):
            put_secret(emulator, "lost-response", "created")
    assert stored_values(emulator, "lost-response") == ["created"]


def test_count_limits_a_fault_to_the_next_n_matches(emulator: RunningEmulator) -> None:
    rule = add_fault(emulator, route="^GET /secrets$", kind="status", status=502, count=2)
    assert [get(emulator, LIST).status_code for _ in range(3)] == [502, 502, 401]
    (listed,) = emulator.admin("GET", "/faults").json()["faults"]
    assert (listed["id"], listed["applied"], listed["remaining"]) == (rule["id"], 2, 0)


def test_seeded_probability_is_reproducible(emulator: RunningEmulator) -> None:
    expected_rng = random.Random(42)
    expected = [503 if expected_rng.random() < 0.3 else 401 for _ in range(20)]
    assert 503 in expected
    assert 401 in expected
    for _ in range(2):
        emulator.reset()
        add_fault(emulator, route="^GET /secrets$", kind="status", probability=0.3, seed=42)
        with emulator.http() as client:
            url = emulator["key_vault_url"] + LIST
            assert [client.get(url).status_code for _ in range(20)] == expected


def test_hold_parks_requests_until_released(emulator: RunningEmulator) -> None:
    add_fault(emulator, route="^GET /secrets$", kind="hold")
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures: list[Future[httpx.Response]] = [pool.submit(get, emulator, LIST) for _ in range(2)]
        wait_until_held(emulator, 2)
        held = emulator.admin("GET", "/faults/held").json()
        assert held["requests"] == [{"method": "GET", "path": "/secrets", "after": False}] * 2
        assert not any(future.done() for future in futures)
        assert emulator.admin("POST", "/faults/release", json={"count": 1}).json() == {
            "released": 1
        }
        # Releasing all of them says how many (it said 0: the list was emptied while counted).
        assert emulator.admin("POST", "/faults/release").json() == {"released": 1}
        assert [future.result(timeout=10).status_code for future in futures] == [401, 401]
    assert emulator.admin("GET", "/faults/held").json()["held"] == 0


def test_hold_after_the_service_acted_then_drop(emulator: RunningEmulator) -> None:
    add_fault(emulator, route="^PUT /secrets/", kind="hold", after=True)
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(put_secret, emulator, "held", "written")
        wait_until_held(emulator)
        assert stored_values(emulator, "held") == ["written"]  # acted, response parked
        emulator.admin("POST", "/faults/release", json={"action": "drop"})
        with pytest.raises(httpx.TransportError):
            future.result(timeout=10)


_CLIENT = """
import ssl, sys, httpx
httpx.put(sys.argv[1], json={"value": "from a dead client"}, headers={"Authorization": sys.argv[2]},
          verify=ssl.create_default_context(cafile=sys.argv[3]), timeout=60)
"""


def test_held_request_completes_after_its_client_died(emulator: RunningEmulator) -> None:
    add_fault(emulator, route="^PUT /secrets/orphan", kind="hold")
    url = f"{emulator['key_vault_url']}/secrets/orphan?api-version=7.5"
    authorization = officer_headers(emulator)["Authorization"]
    client = subprocess.Popen(
        [sys.executable, "-c", _CLIENT, url, authorization, emulator.ca_bundle]
    )
    try:
        wait_until_held(emulator)
        client.kill()
        client.wait(timeout=10)
        assert stored_values(emulator, "orphan") == []
        emulator.admin("POST", "/faults/release")
        deadline = time.monotonic() + 10
        while stored_values(emulator, "orphan") != ["from a dead client"]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(timeout=10)


@pytest.mark.parametrize(
    "spec",
    [
        {"route": ".*", "kind": "explode"},
        {"route": "(", "kind": "status"},
        {"kind": "status"},
        {"route": ".*", "kind": "latency"},
        {"route": ".*", "kind": "status", "status": 200},
        {"route": ".*", "kind": "status", "probability": 0},
        {"route": ".*", "kind": "status", "count": 0},
        {"route": ".*", "kind": "status", "rout": "typo"},
    ],
)
def test_invalid_fault_specs_are_refused(emulator: RunningEmulator, spec: dict[str, Any]) -> None:
    with emulator.http() as client:
        response = client.post(emulator["admin_url"] + "/faults", json=spec)
    assert response.status_code == 400
    assert response.json()["message"]
    assert emulator.admin("GET", "/faults").json()["faults"] == []


def test_admin_api_is_never_faulted_and_rules_can_be_removed(emulator: RunningEmulator) -> None:
    everything = add_fault(emulator, route=".*", kind="status", status=503)
    add_fault(emulator, route=".*", kind="latency", latency_ms=1)
    assert emulator.admin("GET", "/faults").status_code == 200
    assert get(emulator, LIST).status_code == 503
    remaining = emulator.admin("DELETE", f"/faults/{everything['id']}").json()["faults"]
    assert [rule["kind"] for rule in remaining] == ["latency"]
    assert get(emulator, LIST).status_code == 401
    assert emulator.admin("DELETE", "/faults").json() == {"faults": []}
