"""`patwarden plan` / `rotate` through the real CLI, in subprocesses, against the emulator."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli.support import Run, cli, start_login
from tests.conftest import RunningEmulator
from tests.support.clock import patwarden_argv
from tests.support.configs import token_entry, write_config
from tests.support.device_codes import approve_next_device_code, login_in_process
from tests.support.issued import assert_no_secret_in, assert_no_secret_in_state
from tests.support.pats import check_pat, check_same
from tests.support.sinks import create_group, group_value, key_vault_value

pytestmark = pytest.mark.slow


def login_through_the_cli(emulator: RunningEmulator, config: Path) -> Run:
    """`patwarden login`, with the device code approved through the admin API like a person."""
    process = start_login(config)
    approve_next_device_code(emulator, process)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    return Run(process.returncode, stdout, stderr)


def document(run: Run) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(run.stdout)
    return data


def one_token(run: Run) -> dict[str, Any]:
    (token,) = document(run)["tokens"]
    assert isinstance(token, dict)
    return token


def test_rotation_into_key_vault_variable_group_and_file_end_to_end(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    group_id = create_group(emulator)
    entry = token_entry(emulator, tmp_path, "flux-git", revoke_after="3s")
    config = write_config(emulator, tmp_path, tokens={"flux-git": entry})
    runs = [login_through_the_cli(emulator, config)]

    planned = cli("plan", "-o", "json", config=config)
    runs.append(planned)
    assert planned.code == 0, planned.stderr
    assert one_token(planned)["due"] == "yes"
    assert one_token(planned)["reason"] == "no PAT issued yet"

    first = cli("rotate", "-o", "json", config=config)
    runs.append(first)
    assert first.code == 0, first.stderr
    assert first.stderr == ""  # no progress display when stderr is not a terminal
    rotated = one_token(first)
    assert rotated["outcome"] == "rotated"
    first_id = rotated["new_authorization_id"]
    assert [s["status"] for s in rotated["sinks"]] == ["holds the new PAT (confirmed)"] * 3
    assert document(first)["status"] == "ok"

    # Every sink holds the same PAT, and it authenticates.
    value = key_vault_value(emulator, "flux-git-pat")
    check_pat(emulator, value, works=True, what="Key Vault")
    check_same(group_value(emulator, group_id, "FLUX_GIT_PAT"), value, what="variable group")
    check_same((tmp_path / "sinks" / "flux-git.pat").read_text(), value, what="file")

    status = cli("status", "-o", "json", config=config)
    runs.append(status)
    assert status.code == 0, status.stderr
    (row,) = document(status)["tokens"]
    assert row["current_authorization_id"] == first_id
    assert {s["authorization_id"] for s in row["sinks"]} == {first_id}
    assert len(row["sinks"]) == 3
    assert row["last_outcome"]["outcome"] == "rotated"
    (rotator,) = document(status)["rotators"]
    assert rotator["username"] == emulator["identities"]["rotator"]["username"]
    assert 89 < rotator["days_until_relogin"] <= 90

    second = cli("rotate", "--force", "-o", "json", config=config)
    runs.append(second)
    assert second.code == 0, second.stderr
    second_id = one_token(second)["new_authorization_id"]
    assert one_token(second)["reason"] == "forced"
    check_pat(emulator, value, works=True, what="the previous PAT during its grace period")
    new_value = key_vault_value(emulator, "flux-git-pat")
    check_pat(emulator, new_value, works=True, what="the new PAT")

    time.sleep(3.5)  # the grace period (revoke_after: 3s) ends
    third = cli("--debug", "rotate", "-o", "json", config=config)
    runs.append(third)
    assert third.code == 0, third.stderr
    assert one_token(third)["outcome"] == "not_due"
    findings = document(third)["findings"]
    assert [(f["kind"], f["authorization_id"]) for f in findings] == [
        ("revoked_previous", first_id)
    ]
    check_pat(emulator, value, works=False, what="the previous PAT after its grace period")
    check_pat(emulator, new_value, works=True, what="the current PAT")
    check_same(group_value(emulator, group_id, "FLUX_GIT_PAT"), new_value, what="variable group")

    audit = cli("audit", "-o", "json", config=config)
    runs.append(audit)
    events = [(r["kind"], r["authorization_id"]) for r in document_list(audit)]
    assert ("promoted", first_id) in events
    assert ("promoted", second_id) in events
    assert ("revoked_previous", first_id) in events
    assert ("operation_done", second_id) in events

    status_after = document(cli("status", "-o", "json", config=config))["tokens"][0]
    assert status_after["current_authorization_id"] == second_id
    assert status_after["previous_authorization_id"] is None

    texts = [text for run in runs for text in (run.stdout, run.stderr)]
    assert_no_secret_in(emulator, *texts)
    assert "DEBUG" in third.stderr  # debug logs were captured, and hold no secret either
    assert_no_secret_in_state(emulator, tmp_path / "state" / "state.db")


def document_list(run: Run) -> list[dict[str, Any]]:
    data = json.loads(run.stdout)
    assert isinstance(data, list)
    return data


def test_exit_code_1_when_some_tokens_fail_and_the_others_still_rotate(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    tokens = {name: token_entry(emulator, tmp_path, name, group=False) for name in ("a", "b", "c")}
    config = write_config(emulator, tmp_path, tokens=tokens)
    login_in_process(emulator, config)
    fault = {"route": "^PUT /secrets/b-pat", "kind": "status", "status": 403}
    emulator.admin("POST", "/faults", json=fault)
    result = cli("rotate", "-o", "table", "--concurrency", "2", config=config)
    assert result.code == 1, result.output
    assert "Needs attention: b." in result.stdout
    rows = {line.split()[1]: line for line in result.stdout.splitlines() if line.startswith("│ ")}
    assert "rotated" in rows["a"]
    assert "rolled_back" in rows["b"]
    assert "rotated" in rows["c"]
    assert "2 rotated, 1 rolled_back — 3 token(s)" in result.stdout
    assert re.search(r"with [12] worker\(s\)", result.stdout), "--concurrency 2 is the most workers"


def test_exit_code_8_when_every_token_fails(emulator: RunningEmulator, tmp_path: Path) -> None:
    tokens = {name: token_entry(emulator, tmp_path, name, group=False) for name in ("a", "b")}
    config = write_config(emulator, tmp_path, tokens=tokens)
    login_in_process(emulator, config)
    emulator.admin("PUT", "/policies", json={"disable_pat_creation": True})
    result = cli("rotate", "-o", "json", config=config)
    assert result.code == 8, result.output
    report = document(result)
    assert report["status"] == "all_failed"
    assert {t["outcome"] for t in report["tokens"]} == {"failed"}
    assert "Traceback" not in result.stderr


def test_a_clamped_lifetime_that_would_loop_is_refused_at_run_time(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    config = write_config(
        emulator, tmp_path, tokens={"t": token_entry(emulator, tmp_path, "t", group=False)}
    )
    login_in_process(emulator, config)
    emulator.admin("PUT", "/policies", json={"max_lifespan_days": 5})
    first = one_token(cli("rotate", "-o", "json", config=config))
    assert first["outcome"] == "rotated"
    assert any("lifespan policy clamped it" in note for note in first["notes"])
    again = cli("rotate", "-o", "json", config=config)
    assert again.code == 8
    refused = one_token(again)
    assert refused["outcome"] == "failed"
    assert refused["reason"].startswith("refusing to rotate t: the issued lifetime is ")
    assert "(clamped by an Azure DevOps lifespan policy)" in refused["reason"]
    assert "Lower rotate_before below the policy's maximum lifespan" in refused["reason"]
    planned = one_token(cli("plan", "-o", "json", config=config))
    assert planned["due"] == "REFUSED"


def test_dry_run_changes_nothing(emulator: RunningEmulator, tmp_path: Path) -> None:
    create_group(emulator)
    config = write_config(emulator, tmp_path, tokens={"t": token_entry(emulator, tmp_path, "t")})
    login_in_process(emulator, config)
    result = cli("rotate", "--dry-run", "-o", "json", config=config)
    assert result.code == 0, result.stderr
    assert document(result)["dry_run"] is True
    assert one_token(result)["outcome"] == "would_rotate"
    listed = cli("pat", "list", "-o", "json", config=config)
    assert json.loads(listed.stdout) == []
    assert not (tmp_path / "sinks" / "t.pat").exists()


def test_only_the_named_tokens(emulator: RunningEmulator, tmp_path: Path) -> None:
    tokens = {name: token_entry(emulator, tmp_path, name, group=False) for name in ("a", "b")}
    config = write_config(emulator, tmp_path, tokens=tokens)
    login_in_process(emulator, config)
    result = cli("rotate", "--token", "b", "-o", "json", config=config)
    assert [t["token"] for t in document(result)["tokens"]] == ["b"]
    unknown = cli("rotate", "--token", "nope", config=config)
    assert unknown.code == 2
    assert "Error: no token named 'nope'" in unknown.stderr
    assert "Fix: configured tokens: a, b" in unknown.stderr


def test_not_logged_in_exits_3_before_anything_runs(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    config = write_config(
        emulator, tmp_path, tokens={"t": token_entry(emulator, tmp_path, "t", group=False)}
    )
    result = cli("rotate", config=config)
    assert result.code == 3, result.output
    assert "Error: identity 'rotator' is not logged in" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "sinks" / "t.pat").exists()
    # With --output json (before or after the command) the failure is a JSON document too.
    for args in (("rotate", "-o", "json", "--config", str(config)), ("-o", "json", "rotate")):
        as_json = cli(*args, config=None if "--config" in args else config)
        assert as_json.code == 3, as_json.output
        document = json.loads(as_json.stdout)
        assert (document["ok"], document["exit_code"]) == (False, 3)
        assert document["error"]["type"] == "ReloginRequired"


def test_an_invalid_config_exits_2_with_every_problem(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    tokens = {"t": {"scopes": ["vso.cod"], "lifetime": "5d", "sinks": [{"kind": "file"}]}}
    config = write_config(emulator, tmp_path, tokens=tokens)
    result = cli("rotate", config=config)
    assert result.code == 2
    assert "3 problems in the configuration" in result.stderr
    assert "tokens.t.scopes[0]: unknown PAT scope 'vso.cod'" in result.stderr
    assert "tokens.t.rotate_before: 7d is not shorter than lifetime 5d" in result.stderr
    assert "tokens.t.sinks[0].path: required key is missing" in result.stderr
    assert "Traceback" not in result.stderr


def test_plan_as_a_table_needs_no_sign_in(emulator: RunningEmulator, tmp_path: Path) -> None:
    tokens = {"a": token_entry(emulator, tmp_path, "a", group=False)}
    config = write_config(emulator, tmp_path, tokens=tokens)
    emulator.admin("DELETE", "/requests")
    result = cli("plan", "-o", "table", config=config)
    assert result.code == 0, result.stderr
    assert "no PAT issued yet" in result.stdout
    assert result.stdout.rstrip().endswith(
        "1 of 1 token(s) due now; `patwarden rotate` rotates them."
    )
    assert emulator.admin("GET", "/requests").json()["requests"] == []


def test_progress_is_shown_only_when_stderr_is_a_terminal(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    tokens = {name: token_entry(emulator, tmp_path, name, group=False) for name in ("a", "b")}
    config = write_config(emulator, tmp_path, tokens=tokens)
    login_in_process(emulator, config)
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [*patwarden_argv(), "rotate", "-o", "json", "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=terminal,
            text=True,
            env={**os.environ, "COLUMNS": "120", "TERM": "xterm"},
        )
        os.close(terminal)
        stdout, _ = process.communicate(timeout=120)
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal's other end is closed: everything was read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(controller)
    assert process.returncode == 0
    assert json.loads(stdout)["summary"] == {"rotated": 2}  # stdout stays clean JSON
    assert b"rotating" in shown
    assert b"2/2" in shown or b"1/2" in shown
    assert_no_secret_in(emulator, stdout, shown.decode(errors="replace"))
