"""The Azure DevOps inventory source against the emulator: exact findings, access errors."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from patwarden.app.context import AppContext
from patwarden.config.model import load_config
from patwarden.identity.cache_crypto import generate_cache_key
from patwarden.identity.credential_set import CredentialSet
from patwarden.inventory.findings import FindingRules
from patwarden.inventory.model import OwnerStatus
from patwarden.inventory.scanner import Scanner
from patwarden.inventory.source import InventoryAccessDenied, default_is_managed
from patwarden.inventory.wiring import AuditorClient, auditor_client
from tests.conftest import RunningEmulator
from tests.inventory.emulator_support import (
    EXPECTED,
    EXPECTED_PATS,
    EXPECTED_STATUS,
    MANAGED_NAME,
    SECOND_ORG,
    auditor_config,
    seed_population,
)
from tests.support import clock
from tests.support.configs import KEY_ENV
from tests.support.device_codes import login

pytestmark = pytest.mark.slow


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, generate_cache_key().reveal())


@pytest.fixture
def seeded(emulator: RunningEmulator) -> dict[str, str]:
    return seed_population(emulator)


@contextmanager
def _client(credentials: CredentialSet, identity: str) -> Iterator[AuditorClient]:
    """The auditor client of a run context over *credentials*' config (same token cache)."""
    with (
        AppContext(config=credentials.config) as app,
        auditor_client(context=app, identity=identity, managed=frozenset()) as client,
    ):
        yield client


def _scan(client: AuditorClient, orgs: tuple[str, ...]) -> tuple[Scanner, list]:  # type: ignore[type-arg]
    scanner = Scanner(
        source=client.source, organizations=orgs, now=clock.now(), rules=FindingRules()
    )
    return scanner, list(scanner.rows())


def test_every_finding_detected_and_none_invented(
    emulator: RunningEmulator, tmp_path: Path, key_env: None, seeded: dict[str, str]
) -> None:
    credentials = login(emulator, auditor_config(emulator, tmp_path), "auditor")
    with _client(credentials, "auditor") as client:
        scanner, rows = _scan(client, (emulator["organization"],))
        kinds = Counter(k.value for row in rows for k in row.kinds)
        assert dict(kinds) == EXPECTED
        assert len(rows) == EXPECTED_PATS
        assert Counter(r.status.value for r in rows) == EXPECTED_STATUS
        assert scanner.problems == []
        assert scanner.users_scanned == 7  # 3 seeded identities + alice, bob, carol, dave
        by_id = {row.pat.authorization_id: row for row in rows}
        assert {k.value for k in by_id[seeded["managed"]].kinds} == {"global"}
        assert by_id[seeded["managed"]].pat.managed
        assert by_id[seeded["managed"]].pat.display_name == MANAGED_NAME
        assert sum(r.pat.managed for r in rows) == 1
        assert by_id[seeded["disabled-owner"]].pat.owner.status is OwnerStatus.DISABLED
        assert by_id[seeded["removed-owner"]].pat.owner.status is OwnerStatus.REMOVED
        assert by_id[seeded["clean"]].findings == ()
        assert by_id[seeded["revoked"]].status.value == "revoked"
        assert {k.value for k in by_id[seeded["broad"]].kinds} == {"broad-scope"}
        # The membership state is asked only for users holding a PAT that may still work.
        requests = client.requests
        assert requests <= 1 + 7 + 4  # graph page + one Token Admin page per user + states


def test_two_organizations_count_each_global_pat_once(
    emulator: RunningEmulator, tmp_path: Path, key_env: None, seeded: dict[str, str]
) -> None:
    credentials = login(emulator, auditor_config(emulator, tmp_path), "auditor")
    with _client(credentials, "auditor") as client:
        _, rows = _scan(client, (emulator["organization"], SECOND_ORG))
        ids = Counter(r.pat.authorization_id for r in rows)
        assert set(ids.values()) == {1}
        assert len(rows) == EXPECTED_PATS + 1  # plus dave's fabrikam-only PAT
        fabrikam = [r for r in rows if r.pat.organization == SECOND_ORG]
        assert [r.pat.authorization_id for r in fabrikam if not r.pat.is_global] == [
            seeded["fabrikam-only"]
        ]


def test_a_user_who_is_not_a_pca_is_told_which_role_is_needed(
    emulator: RunningEmulator, tmp_path: Path, key_env: None, seeded: dict[str, str]
) -> None:
    credentials = login(emulator, auditor_config(emulator, tmp_path), "rotator")
    with (
        _client(credentials, "rotator") as client,
        pytest.raises(InventoryAccessDenied) as caught,
    ):
        _scan(client, (emulator["organization"],))
    text = str(caught.value)
    assert "Identity 'rotator' may not list other users' PATs (Token Admin)" in text
    assert "Project Collection Administrators" in text
    assert caught.value.exit_code == 3


def test_a_service_principal_works_only_where_the_org_allows_it(
    emulator: RunningEmulator,
    tmp_path: Path,
    seeded: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "INVENTORY_SP_SECRET", emulator["identities"]["service_principal"]["client_secret"]
    )
    config = load_config(auditor_config(emulator, tmp_path, auditor="sp"))
    credentials = CredentialSet(config)
    with _client(credentials, "sp") as client:
        with pytest.raises(InventoryAccessDenied) as caught:
            _scan(client, (emulator["organization"],))
        assert "does not let service principals use Token Admin" in str(caught.value)
        assert "kind: user" in str(caught.value)
        emulator.admin("PUT", "/policies", json={"service_principals_token_admin": True})
        _, rows = _scan(client, (emulator["organization"],))
        assert len(rows) == EXPECTED_PATS
    credentials.close()


def test_throttling_pauses_every_worker_and_the_scan_still_completes(
    emulator: RunningEmulator, tmp_path: Path, key_env: None, seeded: dict[str, str]
) -> None:
    credentials = login(emulator, auditor_config(emulator, tmp_path), "auditor")
    # 6 requests per 2 s for the auditor: the scan needs about 12, with 8 workers at once.
    emulator.admin("PUT", "/rate-limit", json={"enabled": True, "limit": 6, "window_seconds": 2})
    emulator.admin("DELETE", "/requests")
    with _client(credentials, "auditor") as client:
        scanner, rows = _scan(client, (emulator["organization"],))
    assert len(rows) == EXPECTED_PATS
    assert dict(Counter(k.value for row in rows for k in row.kinds)) == EXPECTED
    assert scanner.problems == []
    logged = emulator.admin("GET", "/requests").json()["requests"]
    ado = [r for r in logged if r["path"].startswith("/vssps/")]
    throttled = [r for r in ado if r["status"] == 429]
    # Once the budget is spent the shared limiter holds every worker: at most the requests
    # already in flight are refused, and every one of them was retried successfully.
    assert len(throttled) <= 8
    assert len([r for r in ado if r["status"] == 200]) == len(ado) - len(throttled)
    first, last = ado[0]["time"], ado[-1]["time"]
    assert datetime.fromisoformat(last) - datetime.fromisoformat(first) >= timedelta(seconds=1.5)


def test_only_a_configured_rotators_pat_of_a_configured_token_is_managed() -> None:
    is_managed = default_is_managed(
        {"aaaa"}, tokens={"flux-git"}, rotators={"Rotator@contoso.example"}
    )
    marked = "patwarden:flux-git:0123456789abcdef0123456789abcdef"
    assert is_managed("x", marked, "rotator@contoso.example")
    assert not is_managed("x", marked, "alice@contoso.example")  # a look-alike of a user
    assert not is_managed(
        "x", "patwarden:other:0123456789abcdef0123456789abcdef", "rotator@contoso.example"
    )
    assert is_managed("AAAA", "anything", None)  # the state store knows it
