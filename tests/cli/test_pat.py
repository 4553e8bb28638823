"""`patwarden pat …` through the real CLI against the emulator: no prompt, no leaked secret."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.cli.support import cli, let_access_tokens_expire, logged_requests
from tests.conftest import RunningEmulator
from tests.support import clock
from tests.support.clock import patwarden_argv
from tests.support.configs import write_config
from tests.support.device_codes import login_in_process
from tests.support.issued import assert_no_secret_in, issued_secrets

pytestmark = pytest.mark.slow


@pytest.fixture
def config(emulator: RunningEmulator, tmp_path: Path) -> Path:
    """A config for the emulator whose rotator is signed in."""
    path = write_config(emulator, tmp_path)
    login_in_process(emulator, path)
    return path


def pats_of_rotator(emulator: RunningEmulator) -> list[dict[str, object]]:
    upn = emulator["identities"]["rotator"]["username"]
    pats: list[dict[str, object]] = emulator.admin("GET", "/pats", params={"username": upn}).json()[
        "value"
    ]
    return pats


def run_on_a_terminal(*args: str) -> tuple[int, str]:
    """Run the CLI with stdout (and stderr) on a pseudo-terminal; return (code, what it showed)."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [*patwarden_argv(), *args],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env=os.environ.copy(),
    )
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    return process.wait(timeout=60), shown.decode(errors="replace")


def days_from_now(moment: str) -> float:
    return (datetime.fromisoformat(moment) - clock.now()) / timedelta(days=1)


def test_create_list_show_extend_revoke_in_new_processes_without_a_prompt(
    emulator: RunningEmulator, config: Path
) -> None:
    created = cli(
        "pat", "create", "--name", "adhoc-deploy", "--scope", "vso.code", "--scope",
        "vso.packaging", "--lifetime", "30d", config=config,
    )  # fmt: skip
    assert created.code == 0, created.stderr
    value = created.stdout.strip()
    assert created.stdout == value + "\n"  # the value, alone, once
    assert ("pat", value) in issued_secrets(emulator)
    assert "Created PAT 'adhoc-deploy' (" in created.stderr
    assert "scopes vso.code vso.packaging" in created.stderr
    assert value not in created.stderr

    listed = cli("pat", "list", config=config)
    assert listed.code == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    pat_id = row["authorization_id"]
    assert row["name"] == "adhoc-deploy"
    assert row["scopes"] == ["vso.code", "vso.packaging"]
    assert row["status"] == "active"
    assert row["global"] is False
    assert row["managed_token"] is None
    assert "token" not in row
    assert days_from_now(row["valid_to"]) == pytest.approx(30, abs=0.01)

    table = cli("pat", "list", "--output", "table", config=config)
    assert table.code == 0
    assert pat_id in table.stdout
    assert "adhoc-deploy" in table.stdout
    assert "vso.code, vso.packaging" in table.stdout

    shown = cli("pat", "show", pat_id, config=config)
    assert shown.code == 0
    assert json.loads(shown.stdout)["authorization_id"] == pat_id

    extended = cli("pat", "extend", pat_id, "--lifetime", "60d", config=config)
    assert extended.code == 0, extended.stderr
    assert days_from_now(json.loads(extended.stdout)["valid_to"]) == pytest.approx(60, abs=0.01)
    assert extended.stderr == ""  # JSON mode: the document is the whole answer
    as_table = cli("pat", "extend", pat_id, "--lifetime", "61d", "-o", "table", config=config)
    assert as_table.code == 0
    assert "Extended PAT 'adhoc-deploy' until" in as_table.stderr
    assert "61d from now" in as_table.stderr

    unconfirmed = cli("pat", "revoke", pat_id, config=config)
    assert unconfirmed.code == 2
    assert "refusing to revoke without confirmation" in unconfirmed.stderr
    assert "Fix: pass --yes" in unconfirmed.stderr
    assert json.loads(cli("pat", "list", config=config).stdout)[0]["status"] == "active"

    revoked = cli("pat", "revoke", pat_id, "--yes", "--output", "table", config=config)
    assert revoked.code == 0, revoked.stderr
    assert revoked.stdout == (
        f"Revoked PAT 'adhoc-deploy' ({pat_id}) in organization '{emulator['organization']}'.\n"
    )
    assert json.loads(cli("pat", "list", config=config).stdout) == []
    (gone,) = json.loads(cli("pat", "list", "--revoked", config=config).stdout)
    assert (gone["authorization_id"], gone["status"]) == (pat_id, "revoked")
    (every,) = json.loads(cli("pat", "list", "--all", config=config).stdout)
    assert every["status"] == "revoked"

    everything = [
        listed, table, shown, extended, as_table, unconfirmed, revoked,
        cli("pat", "show", pat_id, "-o", "table", config=config),
    ]  # fmt: skip
    assert_no_secret_in(emulator, created.stderr, *(run.output for run in everything))


def test_create_refuses_a_terminal_before_creating_anything(
    emulator: RunningEmulator, config: Path
) -> None:
    emulator.admin("DELETE", "/requests")
    code, shown = run_on_a_terminal(
        "pat", "create", "--name", "x", "--scope", "vso.code", "--lifetime", "1d",
        "--config", str(config),
    )  # fmt: skip
    assert code == 2
    assert "refusing to print a new PAT's value to this terminal" in shown
    assert "nothing was created" in shown
    assert "--show-secret" in shown
    assert pats_of_rotator(emulator) == []
    assert logged_requests(emulator) == []


def test_create_with_show_secret_prints_it_on_the_terminal(
    emulator: RunningEmulator, config: Path
) -> None:
    code, shown = run_on_a_terminal(
        "pat", "create", "--name", "seen", "--scope", "vso.code", "--lifetime", "1d",
        "--show-secret", "--config", str(config),
    )  # fmt: skip
    assert code == 0, shown
    values = [value for kind, value in issued_secrets(emulator) if kind == "pat"]
    assert len(values) == 1
    assert shown.count(values[0]) == 1


def test_create_as_json_carries_the_value_once_and_reports_a_policy_clamp(
    emulator: RunningEmulator, config: Path
) -> None:
    emulator.admin("PUT", "/policies", json={"max_lifespan_days": 7})
    created = cli(
        "pat", "create", "--name", "long", "--scope", "vso.build", "--lifetime", "30d",
        "--output", "json", config=config,
    )  # fmt: skip
    assert created.code == 0, created.stderr
    document = json.loads(created.stdout)
    assert ("pat", document["token"]) in issued_secrets(emulator)
    assert created.stdout.count(document["token"]) == 1
    assert days_from_now(document["valid_to"]) == pytest.approx(7, abs=0.01)
    assert days_from_now(document["clamped_from"]) == pytest.approx(30, abs=0.01)
    assert "Azure DevOps shortened the expiry of 'long'" in created.stderr
    assert "maximum PAT lifespan policy" in created.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scope", "app_token"], "Refusing to request full access (app_token)"),
        (["--scope", "vso.code", "--name", "patwarden:flux:" + "0" * 32], "reconcile could take"),
        (["--scope", "vso code"], "Invalid PAT scope 'vso code'"),
    ],
)
def test_create_refuses_risky_or_invalid_requests_and_creates_nothing(
    emulator: RunningEmulator, config: Path, args: list[str], message: str
) -> None:
    if "--name" not in args:
        args = [*args, "--name", "risky"]
    result = cli("pat", "create", "--lifetime", "7d", *args, config=config)
    assert result.code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert pats_of_rotator(emulator) == []


def test_full_access_only_with_the_explicit_flag(emulator: RunningEmulator, config: Path) -> None:
    result = cli(
        "pat", "create", "--name", "full", "--scope", "app_token", "--lifetime", "1d",
        "--allow-full-access", config=config,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert [pat["scope"] for pat in pats_of_rotator(emulator)] == ["app_token"]


@pytest.mark.parametrize("lifetime", ["0d", "400d", "soon"])
def test_lifetime_must_be_a_duration_up_to_a_year(
    emulator: RunningEmulator, tmp_path: Path, lifetime: str
) -> None:
    config = write_config(emulator, tmp_path)
    result = cli(
        "pat", "create", "--name", "x", "--scope", "vso.code", "--lifetime", lifetime,
        config=config,
    )  # fmt: skip
    assert result.code == 2
    assert "Invalid value for '--lifetime'" in result.stderr


def test_unknown_pat_id_is_an_azure_devops_error(emulator: RunningEmulator, config: Path) -> None:
    result = cli("pat", "show", "00000000-0000-0000-0000-000000000001", config=config)
    assert result.code == 4
    assert "no PAT with that authorization id" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("admin_path", "cause", "anchor"),
    [
        ("/refresh-tokens/revoke", "the grant was revoked", "aadsts50173"),
        ("/refresh-tokens/expire", "the refresh token expired after 90 days without use",
         "aadsts700082"),
    ],
)  # fmt: skip
def test_an_unusable_sign_in_gives_the_specific_relogin_message(
    emulator: RunningEmulator, config: Path, admin_path: str, cause: str, anchor: str
) -> None:
    emulator.admin(
        "POST", admin_path, json={"username": emulator["identities"]["rotator"]["username"]}
    )
    let_access_tokens_expire(config)
    result = cli("pat", "list", config=config)
    assert result.code == 3
    assert result.stderr.startswith("Error: identity 'rotator' (svc-patwarden@contoso.example) ")
    assert f"cannot get a token silently: {cause}" in result.stderr
    assert "Fix: run `patwarden login --identity rotator` again" in result.stderr
    assert result.stderr.rstrip().endswith(f"identities.md#{anchor}")
    assert "Traceback" not in result.output
    assert_no_secret_in(emulator, result.output)


def test_a_service_principal_rotator_is_refused_before_any_request(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    config = write_config(emulator, tmp_path, rotator="writer")
    emulator.admin("DELETE", "/requests")
    runs = [
        cli("pat", "list", config=config),
        cli("pat", "create", "--name", "x", "--scope", "vso.code", "--lifetime", "1d",
            config=config),
        cli("pat", "revoke", "00000000-0000-0000-0000-000000000001", "--yes", config=config),
    ]  # fmt: skip
    for run in runs:
        assert run.code == 2
        assert "identities.writer.kind: a service_principal cannot be the rotator" in run.stderr
        assert "accepts only a user's delegated Entra token" in run.stderr
        assert "make the rotator a dedicated Entra user (kind: user)" in run.stderr
    assert logged_requests(emulator) == []
