"""Azure DevOps rate limiting (contract §5) against the real emulator process."""

from __future__ import annotations

import base64
import datetime as dt
import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from patwarden.domain.scopes import AZURE_DEVOPS_RESOURCE
from patwarden_emulator.ratelimit import identity_key
from tests.conftest import RunningEmulator
from tests.support import clock
from tests.support.pats import basic_auth
from tests.support.tokens import minted_token

DEVOPS_PATH = "/devops/contoso/_apis/connectionData"


def devops_token(emulator: RunningEmulator, who: str = "rotator") -> str:
    """A fresh (minted) Azure DevOps token of a seeded user: the budget follows its identity."""
    return minted_token(emulator, who, audience=AZURE_DEVOPS_RESOURCE)


def call(emulator: RunningEmulator, authorization: str, path: str = DEVOPS_PATH) -> httpx.Response:
    with emulator.http() as client:
        # The key vault URL is the emulator's base origin.
        return client.get(
            emulator["key_vault_url"] + path, headers={"Authorization": authorization}
        )


def configure(emulator: RunningEmulator, **settings: Any) -> dict[str, Any]:
    result: dict[str, Any] = emulator.admin("PUT", "/rate-limit", json=settings).json()
    return result


def test_off_by_default(emulator: RunningEmulator) -> None:
    assert emulator.admin("GET", "/rate-limit").json()["enabled"] is False
    response = call(emulator, f"Bearer {devops_token(emulator)}")
    assert "X-RateLimit-Limit" not in response.headers


def test_budget_per_identity_then_429(emulator: RunningEmulator) -> None:
    configure(emulator, enabled=True, limit=3, window_seconds=60)
    remaining = []
    for _ in range(3):
        # A fresh token each time: the budget follows the identity, not the token.
        response = call(emulator, f"Bearer {devops_token(emulator)}")
        assert response.status_code != 429
        assert response.headers["X-RateLimit-Limit"] == "3"
        assert response.headers["X-RateLimit-Resource"]
        assert int(response.headers["X-RateLimit-Reset"]) > time.time()
        remaining.append(response.headers["X-RateLimit-Remaining"])
    assert remaining == ["2", "1", "0"]

    blocked = call(emulator, f"Bearer {devops_token(emulator)}")
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60
    assert blocked.headers["X-RateLimit-Remaining"] == "0"
    assert blocked.json()["message"].startswith("TF400733: The request has been canceled: ")
    assert blocked.json()["typeKey"]

    assert call(emulator, f"Bearer {devops_token(emulator, 'org_admin')}").status_code != 429
    vault = call(emulator, "Bearer x", path="/secrets?api-version=7.5")
    assert vault.status_code == 401
    assert "X-RateLimit-Limit" not in vault.headers

    emulator.reset()
    after_reset = call(emulator, f"Bearer {devops_token(emulator)}")
    assert after_reset.status_code != 429
    assert "X-RateLimit-Limit" not in after_reset.headers


def test_a_pat_counts_against_its_owner_and_is_never_logged(emulator: RunningEmulator) -> None:
    rotator = emulator["identities"]["rotator"]["username"]
    valid_to = (clock.now() + dt.timedelta(days=7)).isoformat()
    pat = emulator.admin(
        "POST",
        "/pats",
        json={
            "username": rotator,
            "displayName": "rl",
            "scope": "vso.project",
            "validTo": valid_to,
        },
    ).json()["token"]
    basic = basic_auth(pat)
    configure(emulator, enabled=True, limit=2, window_seconds=60)
    assert call(emulator, basic).headers["X-RateLimit-Remaining"] == "1"
    assert (
        call(emulator, f"Bearer {devops_token(emulator)}").headers["X-RateLimit-Remaining"] == "0"
    )
    assert call(emulator, basic).status_code == 429
    unknown = basic_auth("not-a-pat")
    assert call(emulator, unknown).status_code != 429  # an unknown PAT is its own identity
    log = emulator.admin("GET", "/requests").text
    assert pat not in log
    assert basic.split()[1] not in log


def test_delay_threshold_delays_and_says_so(emulator: RunningEmulator) -> None:
    configure(emulator, enabled=True, limit=10, window_seconds=60, delay_threshold=1, delay_ms=300)
    first = call(emulator, f"Bearer {devops_token(emulator)}")
    assert "X-RateLimit-Delay" not in first.headers
    # Limit and Remaining count the TSTUs allowed before delays are imposed (Microsoft's meaning).
    assert first.headers["X-RateLimit-Limit"] == "1"
    assert first.headers["X-RateLimit-Remaining"] == "0"
    started = time.monotonic()
    second = call(emulator, f"Bearer {devops_token(emulator)}")
    assert time.monotonic() - started >= 0.3
    assert second.headers["X-RateLimit-Delay"] == "0.300"
    assert second.headers["X-RateLimit-Remaining"] == "0"
    assert int(second.headers["Retry-After"]) >= 1


@pytest.mark.parametrize(
    "settings",
    [{"limit": -1}, {"window_seconds": 0}, {"enabled": "yes"}, {"delay_threshold": 1.5}, {"x": 1}],
)
def test_invalid_settings_are_refused(emulator: RunningEmulator, settings: dict[str, Any]) -> None:
    with emulator.http() as client:
        response = client.put(emulator["admin_url"] + "/rate-limit", json=settings)
    assert response.status_code == 400
    assert emulator.admin("GET", "/rate-limit").json()["enabled"] is False


def test_identity_key_is_stable_and_never_contains_the_credential() -> None:
    def bearer(claims: dict[str, str]) -> str:
        payload = base64.urlsafe_b64encode(str(claims).replace("'", '"').encode()).decode()
        return f"Bearer e30.{payload.rstrip('=')}.sig"

    assert identity_key(bearer({"oid": "A", "uti": "1"})) == identity_key(
        bearer({"oid": "A", "uti": "2"})
    )
    assert identity_key(bearer({"oid": "A"})) != identity_key(bearer({"oid": "B"}))
    assert identity_key(bearer({"appid": "app"})) == "oid:app"
    pat = "secretpat"
    key = identity_key("Basic " + base64.b64encode(f"user:{pat}".encode()).decode())
    assert key == identity_key("Basic " + base64.b64encode(f"other:{pat}".encode()).decode())
    assert pat not in key
    owned = basic_auth(pat)
    assert identity_key(owned, pat_owner={pat: "A"}.get) == identity_key(bearer({"oid": "A"}))
    assert identity_key(None) == identity_key("") == "anonymous"
    assert identity_key("Bearer not-a-jwt").startswith("digest:")


def test_reset_is_on_the_same_clock_as_the_date_header(emulator: RunningEmulator) -> None:
    """Reset and Date come from one server clock, also when the business clock (the dates of
    PAT data) is moved an hour: a client reads Reset against Date."""
    configure(emulator, enabled=True, limit=5, window_seconds=30)
    ahead = emulator.admin("GET", "/clock").json()["offset_seconds"] + 3600.0
    emulator.admin("PUT", "/clock", json={"offset_seconds": ahead})
    try:
        response = call(emulator, f"Bearer {devops_token(emulator)}")
        date = parsedate_to_datetime(response.headers["Date"]).timestamp()
        assert 30 <= int(response.headers["X-RateLimit-Reset"]) - date <= 32
    finally:
        emulator.admin("PUT", "/clock", json={"offset_seconds": ahead - 3600.0})
