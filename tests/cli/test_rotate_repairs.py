"""Regression tests of issue 10 through the real CLI on the emulator: `rotate` converges.

Each test breaks the world the way the issue's defects did and checks that `rotate` repairs it
(or says why it cannot, with a non-zero exit) — docs/rotation.md#reconcile.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli.support import Run, cli, let_access_tokens_expire
from tests.conftest import RunningEmulator
from tests.reliability.invariants import marked_pats
from tests.support.clock import patwarden_argv
from tests.support.configs import sink_dir, token_entry, write_config
from tests.support.device_codes import login_in_process
from tests.support.pats import check_pat
from tests.support.sinks import create_group, group_variables, key_vault_value

pytestmark = pytest.mark.slow

GROUP_PUT = r"^PUT /devops/.*/_apis/distributedtask/variablegroups/"
PAT_REVOKE = r"^DELETE /vssps/[^/]+/_apis/tokens/pats"


def _doc(run: Run) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(run.stdout)
    return data


def _token(run: Run, name: str = "flux") -> dict[str, Any]:
    (token,) = [t for t in _doc(run)["tokens"] if t["token"] == name]
    assert isinstance(token, dict)
    return token


def _active(emulator: RunningEmulator, token: str) -> set[str]:
    return {
        str(p["authorizationId"])
        for p in marked_pats(emulator, token)
        if not p["revoked"] and not p["expired"]
    }


def _world(emulator: RunningEmulator, tmp_path: Path, **entry: Any) -> Path:
    create_group(emulator)
    tokens = {"flux": token_entry(emulator, tmp_path, "flux", **entry)}
    config = write_config(emulator, tmp_path, tokens=tokens)
    login_in_process(emulator, config)
    return config


def _rotate(config: Path, *args: str) -> Run:
    return cli("rotate", "-o", "json", *args, config=config)


def test_tokens_sharing_a_group_by_name_and_by_id_keep_both_variables(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    """Defect 1: the group lock is keyed by the resolved group, and every write is confirmed."""
    group = create_group(emulator, name="shared")
    by_name = token_entry(emulator, tmp_path, "a", group=False)
    by_id = token_entry(emulator, tmp_path, "b", group=False)
    for entry, ref, variable in ((by_name, "shared", "A_PAT"), (by_id, group, "B_PAT")):
        entry["sinks"].append(
            {
                "kind": "variable_group",
                "project": "infra",
                "group": ref,
                "variable": variable,
                "identity": "writer",
            }
        )
    config = write_config(emulator, tmp_path, tokens={"a": by_name, "b": by_id})
    login_in_process(emulator, config)
    rule = emulator.admin(
        "POST", "/faults", json={"route": GROUP_PUT, "kind": "hold", "count": 1}
    ).json()
    process = subprocess.Popen(
        [*patwarden_argv(), "rotate", "-o", "json", "--concurrency", "2", "--config", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not emulator.admin("GET", "/faults/held").json()["held"]:
        assert time.monotonic() < deadline, "the first group write was never held"
        time.sleep(0.05)
    time.sleep(2)  # the other token must wait for the group's lock meanwhile
    emulator.admin("POST", "/faults/release", json={"action": "continue"})
    stdout, stderr = process.communicate(timeout=120)
    emulator.admin("DELETE", f"/faults/{rule['id']}")
    run = Run(process.returncode, stdout, stderr)
    assert run.code == 0, run.output
    variables = group_variables(emulator, group)
    for token, variable in (("a", "A_PAT"), ("b", "B_PAT")):
        assert _token(run, token)["outcome"] == "rotated"
        assert variable in variables, f"{token}'s variable was lost"
        assert f"{variable}_PATWARDEN" in variables, f"{token}'s marker was lost"
        check_pat(emulator, variables[variable]["value"], works=True, what=f"{token}'s PAT")
    again = _rotate(config)
    assert again.code == 0, again.output
    assert all(t["converged"] for t in _doc(again)["tokens"])


def test_a_current_pat_revoked_outside_patwarden_is_replaced(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    """Defect 2: `pat revoke` of the current PAT; the next run rotates at once."""
    config = _world(emulator, tmp_path)
    first = _token(_rotate(config))["new_authorization_id"]
    revoked = cli("pat", "revoke", first, "--yes", config=config)
    assert revoked.code == 0, revoked.output
    run = _rotate(config)
    assert run.code == 0, run.output
    token = _token(run)
    assert token["outcome"] == "rotated"
    assert "no longer active" in token["reason"]
    assert token["converged"] is True
    assert token["replaced_authorization_id"] is None  # a dead PAT gets no grace period
    assert "current_lost" in {f["kind"] for f in _doc(run)["findings"]}
    check_pat(emulator, key_vault_value(emulator, "flux-pat"), works=True, what="the new PAT")
    assert _active(emulator, "flux") == {token["new_authorization_id"]}


def test_a_stranded_pat_is_shown_and_revoked_by_the_next_run(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    """Defect 3: a failed rollback leaves the new PAT valid; the next run revokes it, not in 1 h."""
    config = _world(emulator, tmp_path)
    first = _token(_rotate(config))["new_authorization_id"]
    for route in (GROUP_PUT, PAT_REVOKE):  # the group refuses the write, the rollback's revoke
        rule = {"route": route, "kind": "status", "status": 400, "count": 1}
        emulator.admin("POST", "/faults", json=rule)
    failed = _rotate(config, "--force")
    assert failed.code != 0, failed.output
    stranded = _token(failed)["new_authorization_id"]
    assert _active(emulator, "flux") == {first, stranded}

    status = cli("status", "-o", "json", config=config)
    assert _token(status)["stranded_authorization_ids"] == [stranded]
    dry = _rotate(config, "--dry-run")
    assert any(
        f["authorization_id"] == stranded and "stranded" in f["detail"]
        for f in _doc(dry)["findings"]
    )
    run = _rotate(config)
    assert run.code == 0, run.output
    assert "stranded_revoked" in {f["kind"] for f in _doc(run)["findings"]}
    assert _active(emulator, "flux") == {first}
    assert _token(run)["converged"] is True
    after = cli("status", "-o", "json", config=config)
    assert _token(after)["stranded_authorization_ids"] == []  # revoked: no longer listed


def test_every_previous_pat_of_repeated_rotations_is_tracked_and_revoked(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    """Defect 4: three `rotate --force` inside a grace period; status shows every previous PAT,
    `--force` says what stays valid, `revoke --previous` revokes each."""
    config = _world(emulator, tmp_path, revoke_after="1d")
    first = _token(_rotate(config))["new_authorization_id"]
    forced = [_token(_rotate(config, "--force")) for _ in range(3)]
    assert "stay(s) valid until the grace period ends" in " ".join(forced[-1]["notes"])
    assert len(_active(emulator, "flux")) == 4
    previous = _token(cli("status", "-o", "json", config=config))["previous_authorization_ids"]
    expected = {first, *(t["new_authorization_id"] for t in forced[:2])}
    assert set(previous) == expected
    revoked = cli("revoke", "flux", "--previous", "--yes", "-o", "json", config=config)
    assert revoked.code == 0, revoked.output
    assert set(_doc(revoked)["revoked_authorization_ids"]) == expected
    assert _active(emulator, "flux") == {forced[-1]["new_authorization_id"]}
    run = _rotate(config)
    assert run.code == 0, run.output
    assert _token(run)["converged"] is True


def test_drift_is_repaired_and_what_cannot_be_repaired_exits_non_zero(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    """Defect 5: an emptied sink is repaired by a rotation; an unreadable one fails the run."""
    config = _world(emulator, tmp_path)
    _rotate(config)
    (sink_dir(tmp_path) / "flux.pat").unlink()
    run = _rotate(config)
    assert run.code == 0, run.output
    token = _token(run)
    assert token["outcome"] == "rotated"
    assert token["reason"].startswith("drift in file")
    check_pat(emulator, (sink_dir(tmp_path) / "flux.pat").read_text(), works=True, what="file")

    writer = emulator["identities"]["service_principal"]["client_id"]
    grants = emulator.admin("GET", "/key-vault/grants").json()["grants"]
    emulator.admin("DELETE", "/key-vault/grants", json={"principal": writer})
    try:
        broken = _rotate(config)
    finally:
        for grant in grants:
            if grant["principal"] == writer:
                emulator.admin("PUT", "/key-vault/grants", json=grant)
    assert broken.code != 0, broken.output
    token = _token(broken)
    assert token["converged"] is False
    assert any("key_vault" in problem for problem in token["problems"])
    assert _doc(broken)["status"] != "ok"


def test_a_sink_whose_target_is_missing_mints_no_pat(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    """Defect 6: a misspelled group; `plan --preflight` says so and `rotate` creates nothing."""
    create_group(emulator)
    entry = token_entry(emulator, tmp_path, "flux")
    entry["sinks"][-1]["group"] = "gitosp"  # misspelled
    config = write_config(emulator, tmp_path, tokens={"flux": entry})
    login_in_process(emulator, config)
    plan = cli("plan", "--preflight", "-o", "json", config=config)
    assert plan.code == 1, plan.output
    lines = _token(plan)["preflight"]
    assert any("variable_group" in line and "FAILED" in line and "gitosp" in line for line in lines)
    run = _rotate(config, "--force")
    assert run.code != 0, run.output
    assert "preflight failed, no PAT was created" in _token(run)["reason"]
    assert marked_pats(emulator, "flux") == []


def test_rotate_json_names_the_replaced_pat_and_plan_after_revoke(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    """Defect 8: `rotate -o json` shows the PAT it replaced; `plan` after `revoke TOKEN`."""
    config = _world(emulator, tmp_path)
    first = _token(_rotate(config))["new_authorization_id"]
    second = _token(_rotate(config, "--force"))
    assert second["replaced_authorization_id"] == first
    assert second["new_authorization_id"] != first
    revoked = cli("revoke", "flux", "--yes", config=config)
    assert revoked.code == 0, revoked.output
    plan = _token(cli("plan", "-o", "json", config=config))
    assert plan["due"] == "yes"
    assert plan["reason"].startswith("no current PAT (it was revoked or lost)")


def test_status_shows_a_failed_sign_in_instead_of_the_relogin_countdown(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    """Defect 8: the sign-in was revoked; `rotate` fails and `status` says so, with the fix."""
    config = _world(emulator, tmp_path)
    assert _rotate(config).code == 0
    username = emulator["identities"]["rotator"]["username"]
    emulator.admin("POST", "/refresh-tokens/revoke", json={"username": username})
    let_access_tokens_expire(config)
    failed = _rotate(config)
    assert failed.code == 3, failed.output
    status = cli("status", "-o", "json", config=config)
    assert status.code == 0, status.output
    (rotator,) = _doc(status)["rotators"]
    assert rotator["last_sign_in_failure"] is not None
    assert "the grant was revoked" in rotator["last_sign_in_failure"]["reason"]
    table = cli("status", "-o", "table", config=config)
    assert "sign-in FAILED" in table.stdout
    assert "patwarden login --identity rotator" in table.stdout


def test_plan_after_the_state_was_lost_says_rotate_would_refuse(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    """Defect 8: `plan` said "due" while `rotate` refuses a token whose state was lost."""
    config = _world(emulator, tmp_path)
    assert _rotate(config).code == 0
    (tmp_path / "state" / "state.db").unlink()
    offline = _token(cli("plan", "-o", "json", config=config))
    assert "patwarden adopt" in offline["note"]
    checked = cli("plan", "--preflight", "-o", "json", config=config)
    assert checked.code == 1, checked.output
    assert any(
        line.startswith("state: FAILED") and "patwarden adopt" in line
        for line in _token(checked)["preflight"]
    )
    refused = _rotate(config)
    assert refused.code != 0
    assert "patwarden adopt" in _token(refused)["reason"]
