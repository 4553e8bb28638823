"""Options shared by every command: before or after the command, the injected clock, JSON errors,
strict choices. No emulator: the config is valid but nothing signs in."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from patwarden.cli.main import cli, main
from patwarden.domain.models import AuditRecord
from patwarden.state.sqlite import SqliteStateStore
from tests.cli.test_config import GOOD, config_file

T0 = datetime(2021, 3, 4, 5, 6, tzinfo=UTC)


class FixedClock:
    def now(self) -> datetime:
        return T0


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return config_file(tmp_path, GOOD + f"state_dir: {tmp_path / 'state'}\n")


def test_config_before_or_after_the_command(config: Path) -> None:
    before = CliRunner().invoke(cli, ["--config", str(config), "config", "check"])
    after = CliRunner().invoke(cli, ["config", "check", "--config", str(config)])
    assert before.exit_code == after.exit_code == 0, before.output
    assert before.output == after.output
    assert f"OK: {config}" in before.output


def test_the_same_option_twice_with_different_values_is_a_usage_error(config: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", "a.yaml", "config", "check", "--config", "b"])
    assert result.exit_code == 2
    assert "give it once" in result.output


@pytest.mark.parametrize("where", ["before", "after"])
def test_output_before_or_after_the_command_and_json_on_failure(tmp_path: Path, where: str) -> None:
    missing = str(tmp_path / "missing.yaml")
    args = ["status", "--config", missing]
    args = ["-o", "json", *args] if where == "before" else [*args, "-o", "json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert document["exit_code"] == 2
    assert document["error"]["type"] == "ConfigError"


def test_a_table_failure_prints_no_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["status", "-o", "table", "--config", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert result.stdout == ""


def test_unknown_audit_kind_is_a_usage_error_listing_the_kinds(config: Path) -> None:
    result = CliRunner().invoke(cli, ["audit", "--kind", "rotated", "--config", str(config)])
    assert result.exit_code == 2
    assert "'rotated' is not one of" in result.output
    assert "revoked_by_user" in result.output


def test_main_runs_every_command_on_the_given_clock(
    config: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "state").mkdir(mode=0o700)
    with SqliteStateStore(path=tmp_path / "state" / "state.db", now=FixedClock().now) as store:
        store.append_audit(AuditRecord(at=T0 - timedelta(hours=12), kind="revoked_by_user"))
    monkeypatch.setattr(sys, "argv", ["patwarden", "audit", "--since", "1d", "-o", "json"])
    monkeypatch.setenv("PATWARDEN_CONFIG", str(config))
    with pytest.raises(SystemExit) as pinned:
        main(clock=FixedClock())
    assert pinned.value.code == 0
    assert [r["kind"] for r in json.loads(capsys.readouterr().out)] == ["revoked_by_user"]
    with pytest.raises(SystemExit):
        main()  # the system clock: 2021 is more than a day ago
    assert json.loads(capsys.readouterr().out) == []
