"""The GitHub Actions recipe (deploy/github-actions/): actionlint (with shellcheck on the run:
scripts), the vendored GitHub workflow schema, OIDC for the writer, and the config it ships."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.support import DEPLOY, check_config, cli_accepts, patwarden_commands, run, tool

RECIPE = DEPLOY / "github-actions"
WORKFLOW = RECIPE / "patwarden-rotate.yml"


def _workflow() -> dict[Any, Any]:
    data = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(data, dict)
    return data


def _actionlint(path: Path) -> str:
    return run([tool("actionlint"), "-verbose", f"-shellcheck={tool('shellcheck')}", str(path)])


def test_actionlint_finds_nothing_and_checked_the_scripts_with_shellcheck() -> None:
    output = _actionlint(WORKFLOW)
    assert "Found total 0 errors" in output
    assert 'Rule "shellcheck" was disabled' not in output


def test_actionlint_would_see_a_mistake(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("inputs.dry-run", "inputs.dryrun", 1))
    with pytest.raises(AssertionError, match='property "dryrun" is not defined'):
        _actionlint(broken)


def test_the_workflow_matches_the_github_workflow_schema() -> None:
    output = run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)]
    )
    assert "ok -- validation done" in output


def test_it_is_scheduled_serialised_and_the_writer_uses_oidc() -> None:
    workflow = _workflow()
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as a boolean
    assert triggers["schedule"] == [{"cron": "17 * * * *"}]
    assert workflow["permissions"] == {"contents": "read", "id-token": "write"}
    assert workflow["concurrency"]["cancel-in-progress"] is False
    steps = workflow["jobs"]["rotate"]["steps"]
    login = next(s for s in steps if s.get("uses", "").startswith("azure/login@"))
    assert set(login["with"]) == {"client-id", "tenant-id", "allow-no-subscriptions"}
    assert not [s for s in steps if "client-secret" in str(s) or "creds" in s.get("with", {})]


def test_every_patwarden_command_in_the_workflow_parses() -> None:
    commands = [
        command
        for step in _workflow()["jobs"]["rotate"]["steps"]
        for command in patwarden_commands(step.get("run", ""))
    ]
    assert [cli_accepts(c) for c in commands] == [
        "patwarden config check",
        "patwarden rotate",
        "patwarden rotate",
    ]


def test_the_config_keeps_state_in_blob_storage_and_the_cache_in_key_vault(
    tmp_path: Path,
) -> None:
    text = (RECIPE / "patwarden.yaml").read_text()
    config = yaml.safe_load(text)
    assert config["state"]["backend"] == "azblob"
    assert config["state"]["identity"] == "writer"
    assert "account_key" not in config["state"]
    assert config["identities"]["rotator"]["cache"]["kind"] == "key_vault"
    assert config["identities"]["writer"]["kind"] == "azure_cli"
    check_config(text, tmp_path)
