"""`patwarden status` and `patwarden audit` through the real CLI against the emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.support import cli
from tests.conftest import RunningEmulator
from tests.support.configs import token_entry, write_config
from tests.support.device_codes import login_in_process

pytestmark = pytest.mark.slow


def test_status_before_anything_was_rotated_or_signed_in(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    tokens = {"flux": token_entry(emulator, tmp_path, "flux", group=False)}
    config = write_config(emulator, tmp_path, tokens=tokens)
    result = cli("status", "-o", "table", config=config)
    assert result.code == 0, result.stderr
    assert "never rotated" in result.stdout
    assert "now" in result.stdout  # next rotation: due at once
    assert result.stdout.rstrip().endswith(
        "Rotator 'rotator': not logged in; run `patwarden login --identity rotator`."
    )
    document = json.loads(cli("status", "-o", "json", config=config).stdout)
    (row,) = document["tokens"]
    assert (row["current_authorization_id"], row["last_outcome"], row["sinks"]) == (None, None, [])
    assert document["rotators"][0]["days_until_relogin"] is None


def test_status_and_audit_after_a_rotation(emulator: RunningEmulator, tmp_path: Path) -> None:
    tokens = {
        "flux": token_entry(emulator, tmp_path, "flux", group=False),
        "npm": token_entry(emulator, tmp_path, "npm", group=False),
    }
    config = write_config(emulator, tmp_path, tokens=tokens)
    assert cli("audit", "-o", "table", config=config).stdout.strip() == "No audit records yet."
    login_in_process(emulator, config)
    rotated = json.loads(cli("rotate", "--token", "flux", "-o", "json", config=config).stdout)
    pat_id = rotated["tokens"][0]["new_authorization_id"]

    table = cli("status", "--token", "flux", "-o", "table", config=config)
    assert table.code == 0, table.stderr
    assert pat_id in table.stdout
    assert "rotated at " in table.stdout
    assert "Rotator 'rotator' (svc-patwarden@" in table.stdout
    assert "re-login needed in 90 days" in table.stdout
    assert "npm" not in table.stdout

    rows = json.loads(cli("status", "-o", "json", config=config).stdout)["tokens"]
    by_name = {row["token"]: row for row in rows}
    assert by_name["flux"]["due"] == "no"
    assert by_name["flux"]["days_left"] == pytest.approx(30, abs=0.1)
    assert by_name["npm"]["due"] == "yes"

    audit = json.loads(cli("audit", "--token", "flux", "-o", "json", config=config).stdout)
    assert {"promoted", "operation_done"} <= {record["kind"] for record in audit}
    assert {record["token"] for record in audit} == {"flux"}
    done = json.loads(cli("audit", "--kind", "operation_done", "-o", "json", config=config).stdout)
    assert [record["authorization_id"] for record in done] == [pat_id]
    future = cli("audit", "--since", "2999-01-01T00:00:00Z", "-o", "table", config=config)
    assert future.stdout.strip() == "No audit records match."
    recent = json.loads(cli("audit", "--since", "1h", "-o", "json", config=config).stdout)
    assert len(recent) == len(json.loads(cli("audit", "-o", "json", config=config).stdout))
    bad = cli("audit", "--since", "last week", config=config)
    assert bad.code == 2
    assert "'last week' is neither a duration (7d, 12h) nor an ISO date" in bad.stderr


def _steady(stdout: str) -> dict[str, Any]:
    """The status document without the figures that move with the clock between two runs."""
    document: dict[str, Any] = json.loads(stdout)
    for row in document["tokens"]:
        row.pop("days_left")
    for row in document["rotators"]:
        row.pop("days_until_relogin")
    return document


def test_status_reads_its_config_snapshot_until_the_config_changes(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    tokens = {"flux": token_entry(emulator, tmp_path, "flux", group=False)}
    config = write_config(emulator, tmp_path, tokens=tokens)
    login_in_process(emulator, config)
    assert cli("rotate", "-o", "json", config=config).code == 0

    loaded = cli("--debug", "status", "-o", "json", config=config)
    assert loaded.code == 0, loaded.stderr
    assert "status reads the snapshot" not in loaded.stderr
    kept = cli("--debug", "status", "-o", "json", config=config)
    assert kept.code == 0, kept.stderr
    assert "status reads the snapshot of" in kept.stderr
    assert _steady(kept.stdout) == _steady(loaded.stdout)
    document = json.loads(kept.stdout)
    (row,) = document["tokens"]
    assert row["current_authorization_id"]  # read from the state
    assert row["sinks"]
    assert document["rotators"][0]["username"].startswith("svc-patwarden@")  # from its cache

    tokens["npm"] = token_entry(emulator, tmp_path, "npm", group=False)
    config = write_config(emulator, tmp_path, tokens=tokens)
    edited = cli("--debug", "status", "-o", "json", config=config)
    assert "status reads the snapshot" not in edited.stderr
    assert [row["token"] for row in json.loads(edited.stdout)["tokens"]] == ["flux", "npm"]

    config.write_text(config.read_text() + "bogus_key: 1\n")
    broken = cli("status", "-o", "json", config=config)
    assert broken.code == 2
    assert "bogus_key" in broken.stderr
