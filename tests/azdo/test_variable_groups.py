from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from patwarden.azdo import AzdoNotFound, Variable, VariableGroup
from patwarden.azdo.variable_groups import secret_update
from patwarden.errors import ConfigError
from patwarden.secret import Secret

from .conftest import ADO, PAT_VALUE, MakeHarness, json_response

PROJECT_ID = "3f1c5d0e-3a1b-4c2d-9e8f-0a1b2c3d4e5f"


def group_json(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": 12,
        "type": "Vsts",
        "name": "gitops",
        "description": "Flux credentials",
        "variables": {
            "FLUX_PAT": {"value": None, "isSecret": True},
            "OTHER_SECRET": {"value": None, "isSecret": True, "isReadOnly": True},
            "FLUX_URL": {"value": "https://dev.azure.com/contoso/infra/_git/flux"},
        },
        "variableGroupProjectReferences": [
            {
                "name": "gitops",
                "description": "Flux credentials",
                "projectReference": {"id": PROJECT_ID, "name": "Platform Team"},
            }
        ],
        "createdOn": "2026-01-01T00:00:00.000Z",
        "modifiedOn": "2026-05-01T10:00:00.1234567Z",
        "isShared": False,
    }
    body.update(overrides)
    return body


def test_get_reads_a_group_from_the_project(make_harness: MakeHarness) -> None:
    h = make_harness(lambda r: json_response(200, group_json()))
    group = h.client.variable_groups.get(org="contoso", project="Platform Team", group_id=12)
    request = h.recorder.last
    assert str(request.url).startswith(ADO)
    assert request.url.raw_path.startswith(
        b"/contoso/Platform%20Team/_apis/distributedtask/variablegroups/12?"
    )
    assert request.url.params["api-version"] == "7.1"
    assert group.id == 12
    assert group.variables["FLUX_PAT"] == Variable(value=None, is_secret=True)
    assert group.variables["FLUX_URL"].value == "https://dev.azure.com/contoso/infra/_git/flux"
    assert group.project_references[0].project_id == PROJECT_ID
    assert group.is_key_vault_linked is False


@pytest.mark.parametrize("answer", [json_response(200, None), httpx.Response(200)])
def test_an_unknown_group_is_not_found(make_harness: MakeHarness, answer: httpx.Response) -> None:
    h = make_harness(lambda r: answer)
    with pytest.raises(AzdoNotFound, match="Variable group 99"):
        h.client.variable_groups.get(org="contoso", project="infra", group_id=99)


@pytest.mark.parametrize("project", ["a/b", "..", "x\\y", "q\x00"])
def test_project_injection_is_rejected_before_any_request(
    make_harness: MakeHarness, project: str
) -> None:
    h = make_harness(lambda r: json_response(200, group_json()))
    with pytest.raises(ConfigError, match="project name"):
        h.client.variable_groups.get(org="contoso", project=project, group_id=12)
    assert h.requests == []


def test_find_by_name_matches_exactly_ignoring_case(make_harness: MakeHarness) -> None:
    others = [group_json(id=13, name="gitops-old"), group_json(id=12, name="GitOps")]
    h = make_harness(lambda r: json_response(200, {"count": 2, "value": others}))
    found = h.client.variable_groups.find_by_name(org="contoso", project="infra", name="gitops")
    assert found is not None
    assert found.id == 12
    assert h.recorder.last.url.params["groupName"] == "gitops"
    assert h.client.variable_groups.find_by_name(org="contoso", project="infra", name="x") is None


def test_find_by_name_refuses_ambiguity(make_harness: MakeHarness) -> None:
    twins = [group_json(id=1), group_json(id=2)]
    h = make_harness(lambda r: json_response(200, {"value": twins}))
    with pytest.raises(ConfigError, match="2 variable groups"):
        h.client.variable_groups.find_by_name(org="contoso", project="infra", name="gitops")


def test_secret_update_changes_one_secret_and_sends_the_rest_back() -> None:
    group = VariableGroup.from_json(group_json(), action="test")
    update = secret_update(group, variable="FLUX_PAT", value=Secret(PAT_VALUE))
    assert PAT_VALUE not in repr(update)
    assert update.to_json() == {
        "name": "gitops",
        "description": "Flux credentials",
        "type": "Vsts",
        "variables": {
            "FLUX_PAT": {"value": PAT_VALUE, "isSecret": True, "isReadOnly": False},
            "OTHER_SECRET": {"value": None, "isSecret": True, "isReadOnly": True},
            "FLUX_URL": {
                "value": "https://dev.azure.com/contoso/infra/_git/flux",
                "isSecret": False,
                "isReadOnly": False,
            },
        },
        "variableGroupProjectReferences": [
            {
                "name": "gitops",
                "description": "Flux credentials",
                "projectReference": {"id": PROJECT_ID, "name": "Platform Team"},
            }
        ],
    }


def test_secret_update_adds_a_missing_variable_and_keeps_read_only_flag() -> None:
    group = VariableGroup.from_json(group_json(), action="test")
    added = secret_update(group, variable="NEW_PAT", value=Secret("v"))
    assert added.to_json()["variables"]["NEW_PAT"] == {
        "value": "v",
        "isSecret": True,
        "isReadOnly": False,
    }
    kept = secret_update(group, variable="OTHER_SECRET", value=Secret("v"))
    assert kept.to_json()["variables"]["OTHER_SECRET"]["isReadOnly"] is True
    # The source group is not modified.
    assert group.variables["OTHER_SECRET"].value is None


def test_secret_update_refuses_key_vault_linked_groups() -> None:
    group = VariableGroup.from_json(
        group_json(type="AzureKeyVault", providerData={"vault": "ops-kv"}), action="test"
    )
    with pytest.raises(ConfigError, match="linked to a Key Vault"):
        secret_update(group, variable="FLUX_PAT", value=Secret("v"))


def test_missing_project_references_fall_back_to_the_read_project(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(lambda r: json_response(200, group_json(variableGroupProjectReferences=None)))
    group = h.client.variable_groups.get(org="contoso", project="infra", group_id=12)
    body = secret_update(group, variable="FLUX_PAT", value=Secret("v")).to_json()
    assert body["variableGroupProjectReferences"] == [
        {"name": "gitops", "description": None, "projectReference": {"name": "infra"}}
    ]


def test_put_goes_to_the_organization_level_url(make_harness: MakeHarness) -> None:
    h = make_harness(lambda r: json_response(200, group_json()))
    group = VariableGroup.from_json(group_json(), action="test")
    result = h.client.variable_groups.put(
        org="contoso", update=secret_update(group, variable="FLUX_PAT", value=Secret(PAT_VALUE))
    )
    request = h.recorder.last
    assert request.method == "PUT"
    assert request.url.path == "/contoso/_apis/distributedtask/variablegroups/12"
    assert request.url.params["api-version"] == "7.1"
    sent = json.loads(request.content)
    assert sent["variables"]["FLUX_PAT"]["value"] == PAT_VALUE
    assert sent["variables"]["OTHER_SECRET"] == {
        "value": None,
        "isSecret": True,
        "isReadOnly": True,
    }
    assert result.variables["FLUX_PAT"].value is None
