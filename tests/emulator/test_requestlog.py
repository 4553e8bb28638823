"""The admin request log: what it records, what it must never record, and its bounds."""

from __future__ import annotations

from patwarden_emulator.requestlog import RequestLog, redact_query
from tests.conftest import RunningEmulator
from tests.support.tokens import minted_token

FIELDS = {"seq", "time", "method", "path", "status", "identity", "duration_ms", "fault"}


def test_redact_query_drops_credential_values_only() -> None:
    assert redact_query("") == ""
    assert redact_query("api-version=7.5&maxresults=2") == "api-version=7.5&maxresults=2"
    redacted = redact_query("code=abc&state=xyz&client_secret=s3&Password=p&device_code=d")
    assert redacted == (
        "code=REDACTED&state=xyz&client_secret=REDACTED&Password=REDACTED&device_code=REDACTED"
    )


def test_log_keeps_the_newest_entries_and_counts_on() -> None:
    log = RequestLog(max_entries=3)
    for n in range(5):
        log.add(method="GET", path=f"/{n}", status=200, identity=None, duration_ms=1, fault=None)
    assert [entry.path for entry in log.since(0)] == ["/2", "/3", "/4"]
    log.clear()
    entry = log.add(method="GET", path="/x", status=200, identity=None, duration_ms=1, fault=None)
    assert entry.seq == 6


def test_requests_are_logged_without_bodies_headers_or_secret_query_values(
    emulator: RunningEmulator,
) -> None:
    token = minted_token(emulator, "service_principal")
    secret_value = "do-not-log-this-value"
    with emulator.http() as client:
        client.put(
            f"{emulator['key_vault_url']}/secrets/logged?api-version=7.5",
            json={"value": secret_value},
            headers={"Authorization": f"Bearer {token}"},
        )
        client.get(
            f"{emulator['key_vault_url']}/{emulator['tenant_id']}/oauth2/v2.0/authorize"
            "?client_id=c&code=auth-code-secret&state=s"
        )
        emulator.admin("GET", "/faults")  # admin calls are not logged

    body = emulator.admin("GET", "/requests").json()
    text = emulator.admin("GET", "/requests").text
    for leaked in (secret_value, token, "auth-code-secret", "Bearer"):
        assert leaked not in text
    put, authorize = body["requests"]
    assert set(put) == FIELDS
    assert (put["method"], put["path"], put["status"]) == (
        "PUT",
        "/secrets/logged?api-version=7.5",
        200,
    )
    assert put["identity"] == "test app"
    assert put["duration_ms"] >= 0
    assert put["fault"] is None
    assert authorize["path"].endswith("?client_id=c&code=REDACTED&state=s")
    assert body["last_seq"] == authorize["seq"]


def test_since_and_delete(emulator: RunningEmulator) -> None:
    url = emulator["key_vault_url"] + "/secrets?api-version=7.5"
    with emulator.http() as client:
        client.get(url)
        first_seq = emulator.admin("GET", "/requests").json()["last_seq"]
        client.get(url)
        newer = emulator.admin("GET", f"/requests?since={first_seq}").json()
        assert [entry["seq"] for entry in newer["requests"]] == [first_seq + 1]
        emulator.admin("DELETE", "/requests")
        assert emulator.admin("GET", "/requests").json()["requests"] == []
        client.get(url)
    (entry,) = emulator.admin("GET", "/requests").json()["requests"]
    assert entry["seq"] == first_seq + 2
    with emulator.http() as client:
        bad = client.get(emulator["admin_url"] + "/requests?since=x")
    assert bad.status_code == 400
