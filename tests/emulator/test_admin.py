"""The admin API core: reset (of every feature and the directory) and the issued-secrets list."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from patwarden.tls import ssl_context
from patwarden_emulator.directory import SEEDED_USER_FLAGS, Directory, seed_defaults
from patwarden_emulator.store import Store
from tests.conftest import RunningEmulator
from tests.support.clock import patwarden_argv
from tests.support.local_user import LocalUser, second_local_user, shared_directory
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


# --- who may use it (issue 11, item 9) -----------------------------------------------------------


def test_the_admin_api_refuses_a_request_without_the_ready_files_token(
    emulator: RunningEmulator,
) -> None:
    with httpx.Client(verify=ssl_context(emulator.ca_bundle), timeout=10) as client:
        anonymous = client.get(emulator["admin_url"] + "/issued-secrets")
        guessed = client.get(
            emulator["admin_url"] + "/issued-secrets", headers={"Authorization": "Bearer guess"}
        )
        grant = client.put(
            emulator["admin_url"] + "/key-vault/grants",
            json={"principal": "mallory", "role": "Key Vault Administrator"},
        )
    for response in (anonymous, guessed, grant):
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized"
        assert "ready file" in response.json()["message"]
    grants = emulator.admin("GET", "/key-vault/grants").json()["grants"]
    assert all(g["principal"] != "mallory" for g in grants)


def _status_as(user: LocalUser, url: str) -> str:
    """The HTTP status *user* gets for GET *url* (no TLS check: an attacker does not care)."""
    if shutil.which("curl"):
        return user.run("curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", url).stdout
    if not Path("/usr/bin/python3").exists():
        pytest.skip("the attack needs curl or /usr/bin/python3 to call the admin API")
    script = (
        "import ssl, sys, urllib.error, urllib.request\n"
        "try:\n"
        "    urllib.request.urlopen(sys.argv[1], context=ssl._create_unverified_context())\n"
        "    print(200, end='')\n"
        "except urllib.error.HTTPError as err:\n"
        "    print(err.code, end='')\n"
    )
    return user.run("/usr/bin/python3", "-c", script, url).stdout


@pytest.fixture
def attacker() -> Iterator[LocalUser]:
    with second_local_user() as user:
        yield user


@pytest.mark.slow
def test_another_local_user_can_neither_read_the_token_nor_use_the_admin_api(
    attacker: LocalUser,
) -> None:
    with shared_directory() as shared:
        state = shared / "emu"  # where docs/emulator.md puts it: a directory in /tmp
        process = subprocess.Popen(
            [*patwarden_argv(), "emulator", "--state-dir", str(state)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None
            printed = json.loads(process.stdout.readline())  # the ready line, once serving
            assert "admin_token" not in printed  # stdout may end up in a CI log
            assert printed["ready_file"] == str(state / "ready.json")
            ready = json.loads((state / "ready.json").read_text())
            assert len(ready["admin_token"]) >= 40
            for path, mode in ((state, 0o700), (state / "ready.json", 0o600)):
                assert stat.S_IMODE(path.stat().st_mode) == mode, path
            assert stat.S_IMODE((state / "emulator.db").stat().st_mode) == 0o600
            for path in (state / "ready.json", state / "emulator.db"):
                denied = subprocess.run(
                    ["cat", str(path)],
                    user=attacker.uid,
                    group=attacker.gid,
                    extra_groups=[],
                    capture_output=True,
                    check=False,
                )
                assert denied.returncode != 0
                assert b"Permission denied" in denied.stderr
            url = printed["admin_url"] + "/issued-secrets"
            assert _status_as(attacker, url) == "401"
            with httpx.Client(verify=ssl_context(printed["ca_bundle"]), timeout=10) as client:
                allowed = client.get(
                    url, headers={"Authorization": f"Bearer {ready['admin_token']}"}
                )
            assert allowed.status_code == 200
        finally:
            process.terminate()
            process.wait(timeout=10)
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
