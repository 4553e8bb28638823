"""`patwarden config check | schema | cache-key` through the real CLI group."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from patwarden.cli.main import cli

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "11111111-2222-3333-4444-555555555555"
GOOD = f"""\
organization: contoso
azure: {{tenant_id: {TENANT}}}
identities:
  rotator: {{kind: user, client_id: {CLIENT}}}
  writer: {{kind: managed_identity}}
auditor: rotator
"""
BAD = f"""\
organization: contoso
azure: {{tenant_id: {TENANT}}}
identities:
  rotator: {{kind: service_principal, client_id: {CLIENT}, client_secret: hunter2-literal}}
"""


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "patwarden.yaml"
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_check_ok(tmp_path: Path) -> None:
    path = config_file(tmp_path, GOOD)
    result = CliRunner().invoke(cli, ["config", "check", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"OK: {path}\n"
        "  organizations: contoso\n"
        "  identities: rotator (user), writer (managed_identity)\n"
        "  rotator: rotator, auditor: rotator\n"
        "  tokens: 0\n"
    )


def test_check_reports_every_problem_with_exit_2_and_no_traceback(tmp_path: Path) -> None:
    path = config_file(tmp_path, BAD)
    result = CliRunner().invoke(cli, ["config", "check", "--config", str(path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "hunter2-literal" not in result.output
    assert f"Error: {path}: 2 problems in the configuration" in result.output
    assert "identities.rotator.client_secret: a secret must not be written" in result.output
    assert "identities.rotator.kind: a service_principal cannot be the rotator" in result.output


def test_check_uses_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = config_file(tmp_path, GOOD)
    monkeypatch.setenv("PATWARDEN_CONFIG", str(path))
    result = CliRunner().invoke(cli, ["config", "check"])
    assert result.exit_code == 0
    assert result.output.startswith(f"OK: {path}\n")


def test_check_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["config", "check"])
    assert result.exit_code == 2
    assert "config file patwarden.yaml not found" in result.output


def test_schema_is_json_schema() -> None:
    result = CliRunner().invoke(cli, ["config", "schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["title"] == "Config"
    assert "identities" in schema["properties"]


def test_cache_key_to_stdout_and_to_a_private_file(tmp_path: Path) -> None:
    printed = CliRunner().invoke(cli, ["config", "cache-key"])
    assert printed.exit_code == 0
    assert len(base64.urlsafe_b64decode(printed.output.strip())) == 32
    target = tmp_path / "keys" / "cache.key"
    written = CliRunner().invoke(cli, ["config", "cache-key", "--output-file", str(target)])
    assert written.exit_code == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert len(base64.urlsafe_b64decode(target.read_text().strip())) == 32
    again = CliRunner().invoke(cli, ["config", "cache-key", "--output-file", str(target)])
    assert again.exit_code == 2
    assert "refusing to overwrite" in again.output


def test_cache_key_output_is_the_deprecated_name_of_output_file(tmp_path: Path) -> None:
    target = tmp_path / "cache.key"
    written = CliRunner().invoke(cli, ["config", "cache-key", "--output", str(target)])
    assert written.exit_code == 0
    assert "deprecated; use --output-file" in written.output
    assert len(base64.urlsafe_b64decode(target.read_text().strip())) == 32
    both = ["config", "cache-key", "--output", str(target), "--output-file", str(target)]
    assert CliRunner().invoke(cli, both).exit_code == 2


@pytest.mark.slow
def test_cache_key_refuses_a_directory_another_user_controls() -> None:
    # Issue 11, item 1: the attacker owns a 0777 directory and pre-creates the old temp names
    # (`.cache.key.<pid>.tmp`) to end up owning the key file's inode.
    from tests.cli.support import cli as run_cli
    from tests.support.local_user import second_local_user, shared_directory

    with second_local_user() as attacker, shared_directory() as shared:
        keys = shared / "keys"
        attacker.run("mkdir", "-m", "777", str(keys))
        for pid in range(2, 40):  # what the old code's next temp names could have been
            attacker.run("touch", f"{keys}/.cache.key.{pid}.tmp")
        refused = run_cli("config", "cache-key", "--output-file", str(keys / "cache.key"))
        assert refused.code == 6, refused.output
        assert f"Refusing the key directory {keys}: it belongs to another user" in refused.stderr
        assert not (keys / "cache.key").exists()
        assert "Traceback" not in refused.stderr
