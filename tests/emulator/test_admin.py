"""The admin API core: reset (of every feature and the directory) and the issued-secrets list."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from patwarden_emulator.directory import SEEDED_USER_FLAGS, Directory, seed_defaults
from patwarden_emulator.store import Store
from tests.conftest import RunningEmulator
from tests.support.tokens import client_credentials_token


def test_reset_restores_every_runtime_feature(emulator: RunningEmulator) -> None:
    emulator.admin("POST", "/faults", json={"route": "^GET /nothing", "kind": "status"})
    emulator.admin("PUT", "/rate-limit", json={"enabled": True, "limit": 5})
    emulator.admin(
        "PUT", "/key-vault/grants", json={"principal": "x@y", "role": "Key Vault Secrets User"}
    )
    with emulator.http() as client:
        client.get(emulator["key_vault_url"] + "/secrets?api-version=7.5")
    assert emulator.admin("GET", "/requests").json()["requests"]

    assert emulator.admin("POST", "/reset").json() == {"reset": True}

    assert emulator.admin("GET", "/faults").json()["faults"] == []
    assert emulator.admin("GET", "/rate-limit").json()["enabled"] is False
    assert emulator.admin("GET", "/requests").json()["requests"] == []
    assert len(emulator.admin("GET", "/key-vault/grants").json()["grants"]) == 1
    assert emulator.admin("GET", "/issued-secrets").json() == {"secrets": []}


def test_reset_drops_parked_requests(emulator: RunningEmulator) -> None:
    emulator.admin("POST", "/faults", json={"route": "^GET /secrets$", "kind": "hold"})
    with ThreadPoolExecutor(max_workers=1) as pool, emulator.http() as client:
        future = pool.submit(client.get, emulator["key_vault_url"] + "/secrets?api-version=7.5")
        while emulator.admin("GET", "/faults/held").json()["held"] == 0:
            assert not future.done()
        emulator.reset()
        with pytest.raises(httpx.TransportError):
            future.result(timeout=10)


def test_directory_reset_restores_seeded_users(tmp_path: Path) -> None:
    store = Store(tmp_path / "emulator.db")
    try:
        directory = Directory(store)
        seeded = seed_defaults(directory, tmp_path)
        extra = directory.add_user(upn="extra@contoso.example", display_name="x", password="p")
        rotator, legacy = seeded.rotator, seeded.legacy_user
        directory.set_user_flags(rotator.oid, enabled=False, mfa_required=False, org_admin=True)
        directory.set_user_flags(legacy.oid, removed=True, mfa_required=True)
        store.execute("UPDATE users SET password_sha256 = 'changed' WHERE oid = ?", (rotator.oid,))

        directory.reset(
            keep={rotator.oid, seeded.org_admin.oid, legacy.oid},
            passwords={rotator.oid: seeded.rotator_password},
        )

        assert directory.user_by_oid(extra.oid) is None
        for user in (rotator, seeded.org_admin, legacy):
            now = directory.user_by_oid(user.oid)
            assert now is not None
            assert (now.enabled, now.removed) == (True, False)
            assert (now.mfa_required, now.org_admin) == SEEDED_USER_FLAGS[user.upn]
            # What seed_defaults gave them is what reset restores.
            assert (now.mfa_required, now.org_admin) == (user.mfa_required, user.org_admin)
        restored = directory.user_by_oid(rotator.oid)
        assert restored is not None
        assert restored.check_password(seeded.rotator_password)
    finally:
        store.close()


def test_unknown_admin_path_is_a_json_404(emulator: RunningEmulator) -> None:
    with emulator.http() as client:
        response = client.get(emulator["admin_url"] + "/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_issued_secrets_lists_what_the_emulator_handed_out(emulator: RunningEmulator) -> None:
    token = client_credentials_token(emulator, "https://vault.azure.net/.default")
    issued = emulator.admin("GET", "/issued-secrets").json()["secrets"]
    assert {"kind": "access_token", "value": token} in issued
    emulator.reset()
    assert emulator.admin("GET", "/issued-secrets").json() == {"secrets": []}
