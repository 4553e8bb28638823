"""The GitHub Actions recipe (deploy/github-actions/): actionlint (with shellcheck on the run:
scripts), the vendored GitHub workflow schema, OIDC for the writer, and the config it ships."""

from __future__ import annotations

import re
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


def test_it_is_scheduled_serialised_and_signs_in_with_the_jobs_oidc_token() -> None:
    workflow = _workflow()
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as a boolean
    assert triggers["schedule"] == [{"cron": "17 * * * *"}]
    assert workflow["permissions"] == {"contents": "read", "id-token": "write"}
    assert workflow["concurrency"]["cancel-in-progress"] is False
    steps = workflow["jobs"]["rotate"]["steps"]
    (rotate,) = [s for s in steps if s.get("name") == "Rotate"]
    assert "audience=api://AzureADTokenExchange" in rotate["run"]
    assert "> ~/.patwarden/oidc-token.new" in rotate["run"]
    # No Azure secret anywhere: only the token cache's key is a GitHub secret.
    secrets = re.findall(r"secrets\.(\w+)", WORKFLOW.read_text())
    assert set(secrets) == {"PATWARDEN_CACHE_KEY"}


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
    # Two federated identities on the file the workflow writes: one for the cache, one for sinks.
    assert config["identities"]["rotator"]["cache"]["identity"] == "cache"
    for name in ("cache", "writer"):
        identity = config["identities"][name]
        assert identity["kind"] == "workload_identity"
        assert identity["token_file"] == "~/.patwarden/oidc-token"
    check_config(text, tmp_path)
