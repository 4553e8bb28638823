"""`patwarden emulator` as a process: ready document, loopback only, clean shutdown, persistence."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import start_emulator, stop_emulator

READY_KEYS = {
    "authority_host",
    "tenant_id",
    "organization",
    "azure_devops_url",
    "vssps_url",
    "key_vault_url",
    "ca_bundle",
    "admin_url",
    "identities",
    "example_config",
}


def test_ready_document_describes_a_loopback_https_emulator(tmp_path: Path) -> None:
    running = start_emulator(tmp_path)
    try:
        ready = running.ready
        assert set(ready) >= READY_KEYS
        for key in (
            "authority_host",
            "azure_devops_url",
            "vssps_url",
            "key_vault_url",
            "admin_url",
        ):
            assert ready[key].startswith("https://127.0.0.1:"), key
        identities = ready["identities"]
        assert identities["rotator"]["mfa_required"] is True
        assert identities["service_principal"]["client_id"]
        assert identities["public_client"]["client_id"]
        assert {"vso.pats", "vso.pats_manage"} <= set(identities["public_client"]["scopes"])
        assert Path(ready["ca_bundle"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
        ready_mode = stat.S_IMODE(os.stat(tmp_path / "ready.json").st_mode)
        assert ready_mode == 0o600
        # Real TLS with the advertised CA: any response at all proves the handshake verified.
        with running.http() as client:
            response = client.get(ready["authority_host"] + "/no-such-path")
        assert response.status_code == 404
    finally:
        stop_emulator(running)


def test_sigterm_stops_it_within_two_seconds(tmp_path: Path) -> None:
    running = start_emulator(tmp_path)
    started = time.monotonic()
    code = stop_emulator(running)
    elapsed = time.monotonic() - started
    assert code == 0
    assert elapsed < 2.0, f"shutdown took {elapsed:.2f}s"


def test_state_dir_survives_a_restart(tmp_path: Path) -> None:
    first = start_emulator(tmp_path)
    stop_emulator(first)
    second = start_emulator(tmp_path)
    try:
        assert second.ready["tenant_id"] == first.ready["tenant_id"]
        assert (
            second.ready["identities"]["service_principal"]
            == first.ready["identities"]["service_principal"]
        )
        assert Path(second.ca_bundle).read_bytes() == Path(first.ca_bundle).read_bytes()
    finally:
        stop_emulator(second)


def test_refuses_a_non_loopback_host(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "patwarden", "emulator", "--host", "0.0.0.0"],  # noqa: S104 - the refusal is the point
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 7
    assert "only serves on loopback" in result.stderr
    assert "Traceback" not in result.stderr


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    running = start_emulator(tmp_path / "a")
    try:
        port = running.ready["authority_host"].rsplit(":", 1)[1]
        result = subprocess.run(
            [sys.executable, "-m", "patwarden", "emulator", "--port", port],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 7
        assert "cannot listen" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        stop_emulator(running)
