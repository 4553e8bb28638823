"""The official ``azure-devops`` Python SDK (7.1.0b4), unmodified, against the emulator.

The SDK never hard-codes URLs: ``Connection`` finds each client's host through
``_apis/ResourceAreas`` and each call's route through ``OPTIONS {host}/_apis`` (location ids).
These tests prove the emulator serves both well enough for the calls patwarden cares about.
TLS is verified against the emulator's CA through ``REQUESTS_CA_BUNDLE`` (the SDK uses
``requests``); the SDK's on-disk option caches go to a per-test directory.
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.emulator.devops_support import Ado


class Sdk:
    """One test's SDK connections to the emulated organization."""

    def __init__(self, ado: Ado, modules: dict[str, Any]) -> None:
        self.ado = ado
        self._modules = modules
        self.connections: list[Any] = []
        # msrest streams every response and the SDK never reads a body it does not
        # deserialize (the 204 of ``revoke_authorizations``): such a response keeps its
        # connection out of the pool, where closing the session cannot reach it, and its
        # socket warns whenever the cyclic collector frees it - possibly mid-test.
        self.responses: list[Any] = []

    @property
    def org_url(self) -> str:
        return f"{self.ado.emulator['azure_devops_url']}/{self.ado.org}"

    def with_pat(self, pat: str) -> Any:
        """A ``Connection`` authenticating with *pat* as Basic auth (empty user name)."""
        basic = self._modules["auth"].BasicAuthentication("", pat)
        return self._connect(basic)

    def with_bearer(self, token: str) -> Any:
        """A ``Connection`` authenticating with an Entra access token."""
        creds = self._modules["auth"].BasicTokenAuthentication({"access_token": token})
        return self._connect(creds)

    def _connect(self, creds: Any) -> Any:
        connection = self._modules["connection"].Connection(base_url=self.org_url, creds=creds)
        self.connections.append(connection)
        return connection

    def close(self) -> None:
        """Close the SDK's keep-alive sessions and release every response it left open.

        (The throwaway ``LocationClient`` a ``Connection`` builds per lookup needs nothing:
        urllib3 closes a pool's idle connections when the pool is collected.)
        """
        for connection in self.connections:
            for client in connection._client_cache.values():
                client._client.close()
            connection._client.close()
        for response in self.responses:
            response.close()

    def pat(self, scope: str, username: str | None = None) -> str:
        made = self.ado.admin_pat(scope=scope, username=username or self.ado.rotator)
        return str(made["token"])

    @property
    def exceptions(self) -> Any:
        return self._modules["exceptions"]


@pytest.fixture
def sdk(ado: Ado, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Sdk]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ado.emulator.ca_bundle)
    monkeypatch.setenv("AZURE_DEVOPS_CACHE_DIR", str(tmp_path))  # read at first import
    file_cache = importlib.import_module("azure.devops._file_cache")
    for cache in (file_cache.OPTIONS_CACHE, file_cache.RESOURCE_CACHE):
        name = Path(cache.file_name).name
        monkeypatch.setattr(cache, "file_name", str(tmp_path / name))
        monkeypatch.setattr(cache, "data", {})
        monkeypatch.setattr(cache, "initial_load_occurred", True)
    client = importlib.import_module("azure.devops.client")
    monkeypatch.setattr(client.Client, "_locations_cache", {})
    modules = {
        "connection": importlib.import_module("azure.devops.connection"),
        "service_client": importlib.import_module("msrest.service_client"),
        "auth": importlib.import_module("msrest.authentication"),
        "exceptions": importlib.import_module("azure.devops.exceptions"),
    }
    found = Sdk(ado, modules)
    service_client = modules["service_client"].ServiceClient
    send = service_client.send

    def recording_send(client: Any, *args: Any, **kwargs: Any) -> Any:
        response = send(client, *args, **kwargs)
        found.responses.append(response)
        return response

    monkeypatch.setattr(service_client, "send", recording_send)
    try:
        yield found
    finally:
        found.close()
    # Collect now, with ResourceWarning still an error: an SDK socket left open fails this
    # test every time instead of whichever later test the collector happens to run in.
    gc.collect()


def _descriptor(ado: Ado, username: str) -> str:
    users = ado.client.get(
        ado.vssps("_apis/graph/users"),
        params={"api-version": "7.1-preview.1"},
        headers={"Authorization": f"Bearer {ado.user_token(ado.admin_user)}"},
    ).json()["value"]
    return str(next(u["descriptor"] for u in users if u["principalName"] == username))


def test_connection_data_and_projects_with_a_basic_pat(sdk: Sdk) -> None:
    connection = sdk.with_pat(sdk.pat("vso.project"))
    data = connection.clients_v7_1.get_location_client().get_connection_data()
    rotator = sdk.ado.emulator["identities"]["rotator"]
    assert data.authenticated_user.id == rotator["object_id"]
    assert data.instance_id == sdk.ado.emulator["organization_id"]
    projects = connection.clients_v7_1.get_core_client().get_projects()
    assert [p.name for p in projects] == ["infra"]


def test_projects_page_with_the_continuation_token(sdk: Sdk) -> None:
    for name in ("alpha", "beta", "gamma"):
        sdk.ado.admin("POST", "/projects", json={"name": name})
    core = sdk.with_pat(sdk.pat("vso.project")).clients_v7_1.get_core_client()
    first = core.get_projects(top=2)
    second = core.get_projects(top=2, continuation_token=2)
    assert [p.name for p in first + second] == ["alpha", "beta", "gamma", "infra"]


def test_a_revoked_pat_is_an_authentication_error(sdk: Sdk) -> None:
    made = sdk.ado.admin_pat(scope="vso.project", revoked=True)
    connection = sdk.with_pat(str(made["token"]))
    # A 401 carrying the VSS envelope surfaces as a service error with its type key.
    with pytest.raises(sdk.exceptions.AzureDevOpsServiceError) as raised:
        connection.clients_v7_1.get_location_client().get_connection_data()
    assert raised.value.type_key == "UnauthorizedRequestException"


def test_token_admin_lists_and_revokes_as_the_org_admin(sdk: Sdk) -> None:
    ado = sdk.ado
    created = ado.create_pat(displayName="sdk-listed")
    admin = sdk.with_bearer(ado.user_token(ado.admin_user))
    token_admin = admin.clients_v7_1.get_token_admin_client()
    descriptor = _descriptor(ado, ado.rotator)
    page = token_admin.list_personal_access_tokens(descriptor, page_size=100)
    listed = {t.authorization_id: t for t in page.value}
    assert listed[created["authorizationId"]].is_valid is True
    assert listed[created["authorizationId"]].token is None
    revocation = importlib.import_module("azure.devops.v7_1.token_admin.models")
    token_admin.revoke_authorizations(
        [revocation.TokenAdminRevocation(authorization_id=created["authorizationId"])]
    )
    again = token_admin.list_personal_access_tokens(descriptor, page_size=100)
    assert {t.authorization_id: t.is_valid for t in again.value}[
        created["authorizationId"]
    ] is False


def test_token_admin_refuses_a_user_who_is_not_an_admin(sdk: Sdk) -> None:
    ado = sdk.ado
    rotator = sdk.with_bearer(ado.user_token())
    client = rotator.clients_v7_1.get_token_admin_client()
    with pytest.raises(sdk.exceptions.AzureDevOpsServiceError) as raised:
        client.list_personal_access_tokens(_descriptor(ado, ado.rotator))
    assert raised.value.type_key == "AccessCheckException"


def test_graph_users_user_and_membership_state(sdk: Sdk) -> None:
    ado = sdk.ado
    graph = sdk.with_pat(sdk.pat("vso.graph")).clients_v7_1.get_graph_client()
    users = graph.list_users(subject_types=["aad"]).graph_users
    rotator = next(u for u in users if u.principal_name == ado.rotator)
    assert rotator.origin == "aad"
    assert rotator.origin_id == ado.emulator["identities"]["rotator"]["object_id"]
    fetched = graph.get_user(rotator.descriptor)
    assert fetched.principal_name == ado.rotator
    assert graph.get_membership_state(rotator.descriptor).active is True
    with pytest.raises(sdk.exceptions.AzureDevOpsServiceError) as raised:
        graph.get_user("aad.bm8tc3VjaC11c2Vy")
    assert raised.value.type_key == "GraphSubjectNotFoundException"


def _group(ado: Ado, name: str = "gitops") -> dict[str, Any]:
    group: dict[str, Any] = ado.admin(
        "POST",
        "/variable-groups",
        json={
            "project": "infra",
            "name": name,
            "variables": {
                "FLUX_PAT": {"value": "old-flux", "isSecret": True},
                "PLAIN": {"value": "visible"},
            },
        },
    )
    return group


def test_variable_groups_get_list_and_update(sdk: Sdk) -> None:
    ado = sdk.ado
    first, second = _group(ado, "gitops"), _group(ado, "other")
    connection = sdk.with_pat(sdk.pat("vso.variablegroups_manage"))
    agent = connection.clients_v7_1.get_task_agent_client()
    got = agent.get_variable_group("infra", first["id"])
    assert got.variables["FLUX_PAT"].is_secret is True
    assert got.variables["FLUX_PAT"].value is None
    assert got.created_by.unique_name == "emulator-admin@emulator.invalid"
    assert [g.id for g in agent.get_variable_groups("infra")] == [second["id"], first["id"]]
    ascending = agent.get_variable_groups("infra", query_order="idAscending", top=1)
    assert [g.id for g in ascending] == [first["id"]]
    assert [g.name for g in agent.get_variable_groups("infra", group_name="git*")] == ["gitops"]
    by_id = agent.get_variable_groups_by_id("infra", [second["id"]])
    assert [g.id for g in by_id] == [second["id"]]

    models = importlib.import_module("azure.devops.v7_1.task_agent.models")
    variables = dict(got.variables)
    variables["FLUX_PAT"] = models.VariableValue(value="new-flux", is_secret=True)
    parameters = models.VariableGroupParameters(
        name=got.name,
        description=got.description,
        type=got.type,
        variables=variables,
        variable_group_project_references=got.variable_group_project_references,
    )
    updated = agent.update_variable_group(parameters, first["id"])
    assert updated.variables["FLUX_PAT"].value is None
    assert updated.modified_by.unique_name == ado.rotator
    stored = ado.admin("GET", f"/variable-groups/{first['id']}/secrets")["variables"]
    assert stored["FLUX_PAT"]["value"] == "new-flux"
    assert stored["PLAIN"]["value"] == "visible"


def test_service_endpoints_get_list_and_update(sdk: Sdk) -> None:
    ado = sdk.ado
    made = ado.admin(
        "POST",
        "/service-endpoints",
        json={
            "project": "infra",
            "name": "azure-repos",
            "type": "externaltfs",
            "scheme": "Token",
            "parameters": {"apitoken": "old-pat"},
        },
    )
    connection = sdk.with_pat(sdk.pat("vso.serviceendpoint_manage"))
    client = connection.clients_v7_1.get_service_endpoint_client()
    endpoint = client.get_service_endpoint_details("infra", made["id"])
    assert endpoint.authorization.parameters == {"apitoken": None}
    assert endpoint.created_by.display_name == "Emulator Administrator"
    listed = client.get_service_endpoints("infra", type="externaltfs")
    assert [e.id for e in listed] == [made["id"]]
    assert client.get_service_endpoints("infra", type="github") == []
    endpoint.authorization.parameters = {"apitoken": "new-pat"}
    updated = client.update_service_endpoint(endpoint, made["id"])
    assert updated.authorization.parameters == {"apitoken": None}
    stored = ado.admin("GET", f"/service-endpoints/{made['id']}/secrets")["parameters"]
    assert stored == {"apitoken": "new-pat"}


def test_scope_errors_reach_the_sdk_as_the_vss_envelope(sdk: Sdk) -> None:
    connection = sdk.with_pat(sdk.pat("vso.code"))
    agent = connection.clients_v7_1.get_task_agent_client()
    with pytest.raises(sdk.exceptions.AzureDevOpsServiceError) as raised:
        agent.get_variable_groups("infra")
    assert raised.value.type_key == "UnauthorizedRequestException"
    reader = sdk.with_pat(sdk.pat("vso.variablegroups_read")).clients_v7_1
    with pytest.raises(sdk.exceptions.AzureDevOpsServiceError) as raised:
        reader.get_task_agent_client().get_variable_group("infra", 999)
    assert raised.value.type_key == "VariableGroupNotFoundException"
