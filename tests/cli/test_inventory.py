"""`patwarden inventory` end to end: the real CLI process against the emulator.

The auditor (the emulator's org admin, a PCA) signs in once per test through the real
device-code flow; the CLI then runs in a new process with no stdin and refreshes silently.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import stat
import subprocess
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from patwarden.domain.models import AuditRecord
from patwarden.identity.cache_crypto import generate_cache_key
from patwarden.inventory.export import CSV_COLUMNS, JSON_SCHEMA
from patwarden.state import SqliteStateStore
from tests.conftest import RunningEmulator
from tests.inventory.emulator_support import (
    EXPECTED,
    EXPECTED_PATS,
    auditor_config,
    globals_retired,
    high_or_worse,
    seed_population,
)
from tests.inventory.factories import data_of
from tests.support import clock
from tests.support.clock import patwarden_argv
from tests.support.configs import KEY_ENV
from tests.support.device_codes import login_in_process
from tests.support.issued import assert_no_secret_in, issued_secrets

ROW_KEYS = {
    "organization",
    "owner",
    "authorization_id",
    "display_name",
    "scopes",
    "valid_from",
    "valid_to",
    "lifetime_days",
    "days_to_expiry",
    "status",
    "is_global",
    "managed",
    "max_severity",
    "findings",
}


class Env:
    """A seeded emulator, a config whose auditor is signed in, and a way to run the CLI."""

    def __init__(self, emulator: RunningEmulator, tmp_path: Path) -> None:
        self.emulator = emulator
        self.tmp_path = tmp_path
        self.key = generate_cache_key().reveal()
        os.environ[KEY_ENV] = self.key  # for the in-process login only (monkeypatched)
        self.ids = seed_population(emulator)
        self.config = auditor_config(emulator, tmp_path)
        login_in_process(emulator, self.config, "auditor")

    def command(self, *args: str) -> list[str]:
        """`patwarden inventory [revoke] --config C ARGS…` as a new Python process."""
        head = [*patwarden_argv(), "inventory"]
        if args[:1] == ("revoke",):
            head, args = [*head, "revoke"], args[1:]
        return [*head, "--config", str(self.config), *args]

    def run(self, *args: str, tty: bool = False) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, KEY_ENV: self.key, "COLUMNS": "200"}
        if tty:
            return self._run_on_a_terminal(self.command(*args), env)
        return subprocess.run(
            self.command(*args),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            env=env,
            timeout=180,
            check=False,
            cwd=self.tmp_path,
        )

    def _run_on_a_terminal(
        self, command: list[str], env: dict[str, str]
    ) -> subprocess.CompletedProcess[str]:
        """Run with stdout on a pseudo-terminal, as a person at a shell would."""
        leader, follower = pty.openpty()
        process = subprocess.Popen(
            command,
            stdout=follower,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=self.tmp_path,
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO once the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        os.close(leader)
        stderr = process.stderr.read().decode() if process.stderr else ""
        process.wait(timeout=180)
        if process.stderr:
            process.stderr.close()
        stdout = b"".join(chunks).decode(errors="replace")
        return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)

    def pats(self, user: str) -> dict[str, dict[str, Any]]:
        """The emulator's own view of a user's PATs (admin API), by authorization id."""
        username = user if "@" in user else f"{user}@contoso.example"
        listed = self.emulator.admin("GET", "/pats", params={"username": username}).json()
        return {p["authorizationId"]: p for p in listed["value"]}

    def revoked(self) -> set[str]:
        found = set()
        rotator = str(self.emulator["identities"]["rotator"]["username"])  # the managed PAT's
        for user in ("alice", "bob", "carol", "dave", rotator):
            found |= {i for i, p in self.pats(user).items() if p["revoked"]}
        return found

    def audit(self) -> list[AuditRecord]:
        path = self.tmp_path / "state" / "state.db"
        if not path.exists():
            return []
        with SqliteStateStore(path=path, now=clock.now) as store:
            return list(store.audit())

    def assert_no_secret_in(self, *texts: str) -> None:
        assert issued_secrets(self.emulator), "the emulator should have issued tokens and PATs"
        assert_no_secret_in(self.emulator, *texts)


@pytest.fixture
def env(emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    monkeypatch.setenv(KEY_ENV, "placeholder")
    return Env(emulator, tmp_path)


@pytest.mark.slow
def test_json_output_matches_the_schema_and_the_population(env: Env) -> None:
    result = env.run("--output", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["schema"] == JSON_SCHEMA
    assert document["organizations"] == [env.emulator["organization"]]
    assert len(document["pats"]) == EXPECTED_PATS
    for row in document["pats"]:
        assert set(row) == ROW_KEYS
        assert set(row["owner"]) == {"descriptor", "principal_name", "display_name", "status"}
        for finding in row["findings"]:
            assert set(finding) == {"kind", "severity", "summary", "fix", "managed"}
    kinds = Counter(f["kind"] for row in document["pats"] for f in row["findings"])
    assert dict(kinds) == EXPECTED
    summary = document["summary"]
    assert {k: v for k, v in summary["by_kind"].items() if v} == EXPECTED
    assert summary["total_pats"] == EXPECTED_PATS
    assert document["problems"] == []
    managed = [row for row in document["pats"] if row["managed"]]
    assert [row["authorization_id"] for row in managed] == [env.ids["managed"]]
    assert managed[0]["findings"][0]["managed"] is True
    if globals_retired():  # a global PAT that stopped working is only to be revoked
        assert managed[0]["findings"][0]["fix"].startswith("Revoke it")
    else:  # patwarden can replace a managed global PAT before it stops working
        assert "patwarden adopt" in managed[0]["findings"][0]["fix"]
    assert f"Wrote {EXPECTED_PATS} PAT(s)" in result.stderr
    env.assert_no_secret_in(result.stdout, result.stderr)


@pytest.mark.slow
def test_csv_output_to_a_file(env: Env) -> None:
    result = env.run("--output", "csv", "--output-file", "pats.csv", "--only-findings")
    assert result.returncode == 0, result.stderr
    target = env.tmp_path / "pats.csv"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == EXPECTED_PATS - 2  # the clean and the revoked PAT have no findings
    kinds = Counter(k for row in rows for k in row["findings"].split(";") if k)
    assert dict(kinds) == EXPECTED
    disabled = next(r for r in rows if r["authorization_id"] == env.ids["disabled-owner"])
    assert disabled["owner"] == "bob@contoso.example"
    assert disabled["owner_status"] == "disabled"
    assert disabled["findings"] == "owner-disabled"
    assert result.stdout == ""


@pytest.mark.slow
def test_html_report_in_a_file(env: Env) -> None:
    result = env.run("--output", "html", "report.html")
    assert result.returncode == 0, result.stderr
    page = (env.tmp_path / "report.html").read_text()
    assert len(data_of(page)) == EXPECTED_PATS
    for kind, count in EXPECTED.items():
        assert f'data-kind-count="{kind}">{count}<' in page
    # Expiries in the next 90 days: 5 days (week 0) and seven at 30 days (week 4).
    assert 'data-count="1"' in page.split("data-week-start")[1]
    weeks = [
        int(part.split('data-count="')[1].split('"')[0])
        for part in page.split('<g class="bar"')[1:]
    ]
    assert weeks == [1, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0]
    env.assert_no_secret_in(page)


@pytest.mark.slow
def test_terminal_table_and_fail_on(env: Env) -> None:
    table = env.run("--top", "5")
    assert table.returncode == 0, table.stderr
    assert f"Scanned {EXPECTED_PATS} PATs of 7 users" in table.stdout
    assert "5 worst of 10" in table.stdout
    # The summary shows each kind's severity as found: a global PAT is critical until global PATs
    # stop working (2026-12-01), low afterwards — the same as its rows say.
    global_line = next(line for line in table.stdout.splitlines() if " global " in f" {line} ")
    assert ("low" if globals_retired() else "critical") in global_line
    gated = env.run("--fail-on", "high", "--output", "json")
    assert gated.returncode == 10
    assert (
        f"{high_or_worse()} finding(s) of severity high or worse (--fail-on high)" in gated.stderr
    )
    assert json.loads(gated.stdout)["summary"]["total_pats"] == EXPECTED_PATS
    assert "Traceback" not in gated.stderr


@pytest.mark.slow
def test_bulk_revoke_revokes_exactly_the_selection_and_audits_it(env: Env) -> None:
    before = env.revoked()
    assert before == {env.ids["revoked"]}
    dry = env.run("revoke", "--finding", "global", "--finding", "full-access", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "2 PAT(s) would be revoked" in dry.stdout
    assert env.revoked() == before
    assert env.audit() == []

    # The managed token's current PAT is left alone without --include-managed.
    done = env.run("revoke", "--finding", "global", "--finding", "full-access", "--yes")
    assert done.returncode == 0, done.stderr
    selected = {env.ids["global"], env.ids["full"]}
    assert "Revoked 2 of 2 selected PAT(s)" in done.stdout
    assert "Left alone 1 PAT(s) patwarden manages" in done.stderr
    assert env.revoked() == before | selected
    records = env.audit()
    assert {r.authorization_id for r in records} == selected
    assert {r.kind for r in records} == {"inventory.revoked"}
    assert {r.token_name for r in records} == {None}
    assert all(dict(r.detail)["organization"] == env.emulator["organization"] for r in records)

    managed = env.run("revoke", "--finding", "global", "--include-managed", "--yes")
    assert managed.returncode == 0, managed.stderr
    assert "Revoked 1 of 1 selected PAT(s)" in managed.stdout
    assert env.revoked() == before | selected | {env.ids["managed"]}
    (record,) = [r for r in env.audit() if r.authorization_id == env.ids["managed"]]
    assert record.token_name == "flux-git"  # the audit names the managed token

    again = env.run("revoke", "--finding", "global", "--include-managed", "--yes")
    assert again.returncode == 0, again.stderr
    assert "Revoked 0 of 0 selected PAT(s)" in again.stdout
    env.assert_no_secret_in(dry.stdout, done.stdout, done.stderr, managed.stdout)


@pytest.mark.slow
def test_revoke_by_user(env: Env) -> None:
    # Options given to the group (`inventory --config C revoke …`) count for revoke too.
    done = subprocess.run(
        [
            *env.command(),
            "revoke",
            "--finding",
            "owner-disabled",
            "--finding",
            "expired",
            "--user",
            "BOB@contoso.example",
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, KEY_ENV: env.key},
        timeout=180,
        check=False,
    )
    # Not a terminal and no --yes: nobody confirmed, so nothing is revoked.
    assert done.returncode == 0, done.stderr
    assert "nothing was revoked; pass --yes" in done.stderr
    assert env.revoked() == {env.ids["revoked"]}
    assert env.audit() == []
    confirmed = env.run(
        "revoke",
        "--finding",
        "owner-disabled",
        "--finding",
        "expired",
        "--user",
        "BOB@contoso.example",
        "--yes",
    )
    assert confirmed.returncode == 0, confirmed.stderr
    assert env.revoked() == {env.ids["revoked"], env.ids["disabled-owner"], env.ids["expired-bob"]}
    assert len(env.audit()) == 2


@pytest.mark.slow
def test_revoke_on_a_terminal_is_a_dry_run_unless_yes(env: Env) -> None:
    result = env.run("revoke", "--finding", "full-access", tty=True)
    assert result.returncode == 0, result.stderr
    assert "Dry run" in result.stdout
    assert "rerun with --yes" in result.stdout
    assert env.revoked() == {env.ids["revoked"]}


@pytest.mark.slow
def test_identity_that_is_not_a_pca_gets_exit_3_and_the_role(
    env: Env, emulator: RunningEmulator
) -> None:
    login_in_process(emulator, env.config)
    result = env.run("--identity", "rotator")
    assert result.returncode == 3
    assert "Project Collection Administrators" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_configuration_problems_exit_2(env: Env) -> None:
    result = env.run("--identity", "nobody")
    assert result.returncode == 2
    assert "'nobody' is not defined under `identities:`" in result.stderr
    result = env.run("--output", "html")
    assert result.returncode == 2
    assert "needs a file name" in result.stderr
    assert "Traceback" not in result.stderr


# --- argument handling (no emulator) -----------------------------------------------------------


def parsed(*args: str) -> dict[str, Any]:
    from patwarden.cli.inventory import inventory

    with inventory.make_context("inventory", list(args), resilient_parsing=True) as ctx:
        return dict(ctx.params)


@pytest.mark.parametrize(
    ("args", "output", "path"),
    [
        (("--output", "html", "report.html"), "html", "report.html"),
        (("--output=html", "report.html"), "html", "report.html"),
        (("--output", "csv", "--fail-on", "high"), "csv", None),
        (("--output", "json", "--output-file", "x.json"), "json", "x.json"),
        (("-o", "json", "--output-file", "x.json"), "json", "x.json"),
        (("-o", "html", "report.html"), "html", "report.html"),
        (("--output", "html", "report.html", "--fail-on", "critical"), "html", "report.html"),
        ((), None, None),  # the command shows a table
    ],
)
def test_output_format_and_file(args: tuple[str, ...], output: str, path: str | None) -> None:
    params = parsed(*args)
    assert params["output"] == output
    assert (str(params["output_file"]) if params["output_file"] else None) == path


def test_a_subcommand_after_the_format_is_not_a_file_name() -> None:
    from click.testing import CliRunner

    from patwarden.cli.main import cli

    assert parsed("--output", "json", "revoke")["output_file"] is None
    result = CliRunner().invoke(cli, ["inventory", "--output", "json", "revoke"])
    assert "Missing option '--finding'" in result.output  # revoke itself was reached


def test_revoke_requires_a_finding_and_rejects_unknown_ones() -> None:
    from click.testing import CliRunner

    from patwarden.cli.main import cli

    runner = CliRunner()
    missing = runner.invoke(cli, ["inventory", "revoke"])
    assert missing.exit_code == 2
    assert "Missing option '--finding'" in missing.output
    unknown = runner.invoke(cli, ["inventory", "revoke", "--finding", "everything"])
    assert unknown.exit_code == 2
    assert "'everything' is not one of" in unknown.output


@pytest.mark.slow
def test_hostile_names_neither_crash_nor_reach_the_terminal_raw(env: Env) -> None:
    # Issue 11, items 5, 6 and 8: an owner name that is rich markup (it crashed with exit 70) and
    # a display name with ESC sequences (clear screen, OSC 8 link, OSC 52 clipboard).
    owner = "a[/]@contoso.example"
    env.emulator.admin("POST", "/users", json={"username": owner})
    name = "x\x1b[2J\x1b]8;;https://evil.example/\x1b\\link\x1b]52;c;ZWNobyBoaQ==\x07"
    now = clock.now()
    env.emulator.admin(
        "POST",
        "/pats",
        json={
            "username": owner,
            "displayName": name,
            "scope": "app_token",
            "validFrom": (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "validTo": (now + timedelta(days=300)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        },
    )
    table = env.run("--top", "50", tty=True)
    assert table.returncode == 0, table.stderr
    assert owner in table.stdout
    assert "x\\x1b[2J\\x1b]8;;https://evil.example/" in table.stdout
    for raw in ("\x1b[2J", "\x1b]8;", "\x1b]52;", "\x07"):
        assert raw not in table.stdout, repr(raw)
    csv_out = env.run("--output", "csv")
    assert csv_out.returncode == 0, csv_out.stderr
    assert "\x1b" not in csv_out.stdout
    assert "x\\x1b[2J" in csv_out.stdout
    env.assert_no_secret_in(table.stdout, table.stderr, csv_out.stdout, csv_out.stderr)
