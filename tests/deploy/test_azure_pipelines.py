"""The Azure Pipelines recipe (deploy/azure-pipelines/): the pipeline and its steps template
against Azure Pipelines' YAML schema, the workload identity service connection, the config.

The schema is Microsoft's (vendored offline by check-jsonschema). Azure Pipelines reads every
scalar as a string, and so does this check, except in a task's ``inputs``, which the schema types
by the task's own input types.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import check_jsonschema  # type: ignore[import-untyped]
import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

from tests.deploy.support import DEPLOY, check_config, cli_accepts, patwarden_commands

RECIPE = DEPLOY / "azure-pipelines"
PIPELINE = RECIPE / "patwarden-rotate.yml"
TEMPLATE = RECIPE / "templates" / "patwarden-rotate.yml"
SCHEMA = Path(check_jsonschema.__file__).parent / "builtin_schemas/vendor/azure-pipelines.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))


def _as_pipelines_read(value: Any, *, task_inputs: bool = False) -> Any:
    """Scalars as strings, as Azure Pipelines reads them; a task's ``inputs`` keep YAML's types,
    since the schema types them by each task's declared input types."""
    if task_inputs:
        return value
    if isinstance(value, dict):
        return {
            k: _as_pipelines_read(v, task_inputs=(k == "inputs" and "task" in value))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_as_pipelines_read(v) for v in value]
    if isinstance(value, str):
        return value
    return str(value).lower() if isinstance(value, bool) else str(value)


def _load(path: Path) -> dict[str, Any]:
    data = _as_pipelines_read(yaml.safe_load(path.read_text()))
    assert isinstance(data, dict)
    return data


def _errors(validator: jsonschema.Draft7Validator, data: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(data)]


@pytest.mark.parametrize("path", [PIPELINE, TEMPLATE], ids=["pipeline", "template"])
def test_the_recipe_matches_the_azure_pipelines_schema(
    path: Path, validator: jsonschema.Draft7Validator
) -> None:
    assert _errors(validator, _load(path)) == []


def test_the_schema_knows_the_azure_cli_task_inputs(validator: jsonschema.Draft7Validator) -> None:
    template = _load(TEMPLATE)
    azure_cli = next(s for s in template["steps"] if s.get("task") == "AzureCLI@2")
    azure_cli["inputs"]["scriptLocaton"] = azure_cli["inputs"].pop("scriptLocation")
    assert _errors(validator, template)


def test_the_pipeline_is_scheduled_and_uses_the_template() -> None:
    pipeline = _load(PIPELINE)
    assert pipeline["trigger"] == "none"
    (schedule,) = pipeline["schedules"]
    assert schedule["cron"] == "17 * * * *"
    assert schedule["always"] == "true"
    steps = pipeline["jobs"][0]["steps"]
    (use,) = [s for s in steps if "template" in s]
    assert (RECIPE / use["template"]).resolve() == TEMPLATE.resolve()
    template_parameters = {p["name"] for p in _load(TEMPLATE)["parameters"]}
    assert set(use["parameters"]) <= template_parameters


def test_the_writer_is_the_service_connection_and_secrets_are_mapped() -> None:
    template = _load(TEMPLATE)
    azure_cli = next(s for s in template["steps"] if s.get("task") == "AzureCLI@2")
    assert azure_cli["inputs"]["azureSubscription"] == "${{ parameters.serviceConnection }}"
    assert azure_cli["inputs"]["addSpnToEnvironment"] is True
    assert '"$idToken" > ~/.patwarden/oidc-token' in azure_cli["inputs"]["inlineScript"]
    assert azure_cli["env"]["PATWARDEN_CACHE_KEY"] == "$(PATWARDEN_CACHE_KEY)"
    commands = patwarden_commands(azure_cli["inputs"]["inlineScript"])
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
    assert "account_key" not in config["state"]
    assert config["identities"]["rotator"]["cache"]["kind"] == "key_vault"
    assert config["identities"]["rotator"]["cache"]["identity"] == "cache"
    for name in ("cache", "writer"):  # both exchange the service connection's federated token
        identity = config["identities"][name]
        assert identity["kind"] == "workload_identity"
        assert identity["token_file"] == "~/.patwarden/oidc-token"
    check_config(text, tmp_path)
