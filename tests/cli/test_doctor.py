"""`patwarden doctor` through the real CLI: each failure mode with its fix, and the exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.support import cli, logged_requests
from tests.conftest import RunningEmulator
from tests.support.configs import write_config
from tests.support.device_codes import login_in_process
from tests.support.issued import assert_no_secret_in

pytestmark = pytest.mark.slow


def checks_of(stdout: str) -> dict[str, dict[str, Any]]:
    document = json.loads(stdout)
    return {check["check"]: check for check in document["checks"]}


def test_all_good_exits_0_with_a_table_or_json(emulator: RunningEmulator, tmp_path: Path) -> None:
    config = write_config(emulator, tmp_path)
    login_in_process(emulator, config)
    as_json = cli("doctor", config=config)
    assert as_json.code == 0, as_json.output
    document = json.loads(as_json.stdout)
    assert (document["ok"], document["exit_code"]) == (True, 0)
    assert document["counts"] == {"ok": 5, "warning": 0, "failure": 0, "skipped": 1}
    assert checks_of(as_json.stdout)["sinks"]["status"] == "skipped"

    table = cli("doctor", "--output", "table", config=config)
    assert table.code == 0
    lines = table.stdout.splitlines()
    assert any("✓" in line and "identity rotator" in line for line in lines)
    assert any("✓" in line and "PAT API contoso" in line for line in lines)
    assert lines[-1] == "All checks passed (1 skipped)."
    assert_no_secret_in(emulator, as_json.output, table.output)


def test_not_logged_in_exits_3_with_the_login_fix(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    result = cli("doctor", "-o", "table", config=write_config(emulator, tmp_path))
    assert result.code == 3
    line = next(line for line in result.stdout.splitlines() if "identity rotator" in line)
    assert line.startswith("│ ✗ │")
    assert "not logged in" in line
    assert "run `patwarden login --identity rotator` once" in line
    assert result.stdout.splitlines()[-1] == (
        "1 failure, 0 warnings: the next rotation would fail. Fix the ✗ lines."
    )


@pytest.mark.parametrize(
    ("admin_path", "cause"),
    [
        ("/refresh-tokens/revoke", "the grant was revoked"),
        ("/refresh-tokens/expire", "the refresh token expired after 90 days without use"),
    ],
)
def test_an_unusable_sign_in_exits_3_with_its_reason_and_fix(
    emulator: RunningEmulator, tmp_path: Path, admin_path: str, cause: str
) -> None:
    config = write_config(emulator, tmp_path)
    login_in_process(emulator, config)
    emulator.admin(
        "POST", admin_path, json={"username": emulator["identities"]["rotator"]["username"]}
    )
    result = cli("doctor", config=config)
    assert result.code == 3
    checks = checks_of(result.stdout)
    assert checks["identity rotator"]["status"] == "failure"
    assert cause in checks["identity rotator"]["detail"]
    assert checks["identity rotator"]["fix"].startswith(
        "run `patwarden login --identity rotator` again"
    )
    assert checks["PAT API contoso"]["status"] == "skipped"
    assert_no_secret_in(emulator, result.output)


def test_a_service_principal_rotator_is_a_config_failure_and_nothing_is_called(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    config = write_config(emulator, tmp_path, rotator="writer")
    emulator.admin("DELETE", "/requests")
    result = cli("doctor", config=config)
    assert result.code == 3
    (check,) = json.loads(result.stdout)["checks"]
    assert check["check"] == "config identities.writer.kind"
    assert check["status"] == "failure"
    assert "a service_principal cannot be the rotator" in check["detail"]
    assert check["fix"].startswith("either make the rotator a dedicated Entra user (kind: user)")
    assert logged_requests(emulator) == []


def test_a_missing_config_file_is_a_failure(tmp_path: Path) -> None:
    result = cli("doctor", "--config", str(tmp_path / "nope.yaml"))
    assert result.code == 3
    (check,) = json.loads(result.stdout)["checks"]
    assert check["detail"] == f"config file {tmp_path / 'nope.yaml'} not found"
    assert check["fix"].startswith("pass --config FILE")


def test_warnings_exit_0_unless_strict(emulator: RunningEmulator, tmp_path: Path) -> None:
    config = write_config(emulator, tmp_path, rotator_settings={"sign_in_frequency": "7d"})
    login_in_process(emulator, config)
    relaxed = cli("doctor", config=config)
    assert relaxed.code == 0
    rotator = checks_of(relaxed.stdout)["identity rotator"]
    assert rotator["status"] == "warning"
    assert rotator["fix"].startswith("run `patwarden login --identity rotator` before ")
    strict = cli("doctor", "--strict", "-o", "table", config=config)
    assert strict.code == 1
    assert strict.stdout.splitlines()[-1] == "1 warning; the next rotation would work."


def test_a_sink_without_access_exits_3_with_the_role_fix(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    sp = emulator["identities"]["service_principal"]["client_id"]
    emulator.admin("DELETE", "/key-vault/grants", json={"principal": sp})
    sink = {"kind": "key_vault", "vault_url": emulator["key_vault_url"], "secret": "flux-git-pat"}
    token = {"scopes": ["vso.code"], "lifetime": "30d", "sinks": [sink]}
    config = write_config(emulator, tmp_path, tokens={"flux-git": token})
    login_in_process(emulator, config)
    result = cli("doctor", config=config)
    assert result.code == 3
    check = checks_of(result.stdout)["sink tokens.flux-git.sinks[0]"]
    assert check["status"] == "failure"
    assert "Key Vault Secrets Officer" in check["fix"]


def test_an_invalid_sink_entry_is_a_config_failure_with_its_fix(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    token = {"scopes": ["vso.code"], "lifetime": "30d", "sinks": [{"kind": "key_vault"}]}
    emulator.admin("DELETE", "/requests")
    result = cli("doctor", config=write_config(emulator, tmp_path, tokens={"t": token}))
    assert result.code == 3
    checks = checks_of(result.stdout)
    assert "config tokens.t.sinks[0].vault_url" in checks
    assert all(check["status"] == "failure" for check in checks.values())
    assert all(check["fix"] for check in checks.values())
    assert logged_requests(emulator) == []


def test_probe_prints_a_table_and_records_shapes_only(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    config = write_config(emulator, tmp_path)
    login_in_process(emulator, config)
    record = tmp_path / "shapes.json"
    result = cli(
        "doctor", "--probe", "--allow-write", "--record", str(record), "-o", "table", config=config
    )
    assert result.code == 0, result.output
    lines = result.stdout.splitlines()
    assert any("pats.list.active" in line and "match" in line for line in lines)
    assert any("pats.create" in line and "match" in line for line in lines)
    assert lines[-1].startswith("13 match, 0 differ, 3 skipped.")
    assert lines[-1].endswith(f"Shapes written to {record}.")
    recorded = json.loads(record.read_text())
    assert recorded["format"] == "patwarden-probe-shapes/1"
    assert emulator["organization"] not in record.read_text()
    assert_no_secret_in(emulator, result.output, record.read_text())


def test_probe_differences_exit_1_in_json(emulator: RunningEmulator, tmp_path: Path) -> None:
    config = write_config(emulator, tmp_path)
    login_in_process(emulator, config)
    emulator.admin(
        "POST", "/faults", json={"route": "^GET /devops/[^/]+/_apis/connectionData",
                                 "kind": "status", "status": 500}
    )  # fmt: skip
    result = cli("doctor", "--probe", "-o", "json", config=config)
    assert result.code == 1, result.output
    document = json.loads(result.stdout)
    probes = {p["probe"]: p for p in document["probes"]}
    assert probes["auth.bad-pat-401"]["result"] == "differs"
    assert probes["auth.bad-pat-401"]["differences"][0] == "status 500, expected 401"
    assert document["exit_code"] == 1


def test_probe_options_need_probe(emulator: RunningEmulator, tmp_path: Path) -> None:
    result = cli("doctor", "--allow-write", config=write_config(emulator, tmp_path))
    assert result.code == 2
    assert "--allow-write and --record go with --probe." in result.stderr
