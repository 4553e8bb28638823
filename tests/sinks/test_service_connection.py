"""The service connection sink against the emulated Azure DevOps (real HTTP, real Entra tokens)."""

from __future__ import annotations

from typing import Any

import pytest

from patwarden.plugins.testing import SinkContract, fake_meta, fake_pat
from patwarden.rotation.ports import SinkVersion
from patwarden.sinks.errors import SinkConfigError, SinkRefused
from patwarden.sinks.service_connection import ServiceConnectionSink
from patwarden.sinks.spec import SinkContext
from tests.conftest import RunningEmulator

PROJECT = "infra"


def create_endpoint(emulator: RunningEmulator, **spec: Any) -> str:
    body = {
        "project": PROJECT,
        "name": "azure-repos",
        "type": "externaltfs",
        "scheme": "Token",
        "parameters": {"apitoken": "old-token"},
        "description": "Flux pulls the infra repo through this connection.",
        "data": {"note": "kept"},
        **spec,
    }
    return str(emulator.admin("POST", "/service-endpoints", json=body).json()["id"])


def stored(emulator: RunningEmulator, endpoint_id: str) -> dict[str, Any]:
    params: dict[str, Any] = emulator.admin(
        "GET", f"/service-endpoints/{endpoint_id}/secrets"
    ).json()["parameters"]
    return params


def document(emulator: RunningEmulator, context: SinkContext, endpoint_id: str) -> Any:
    assert context.azure_devops is not None
    return context.azure_devops("writer").service_endpoints.get(
        org=str(emulator["organization"]), project=PROJECT, endpoint_id=endpoint_id
    )


def make_sink(context: SinkContext, endpoint_id: str, **keys: Any) -> ServiceConnectionSink:
    spec = {"kind": "service_connection", "project": PROJECT, "endpoint_id": endpoint_id}
    return ServiceConnectionSink.from_spec({**spec, **keys}, context)


class TestServiceConnectionContract(SinkContract):
    kind = "service_connection"
    reads_back = False
    restores_previous = False

    @pytest.fixture(params=["Token", "UsernamePassword"])
    def sink(
        self, request: pytest.FixtureRequest, emulator: RunningEmulator, writer_context: SinkContext
    ) -> ServiceConnectionSink:
        if request.param == "Token":
            return make_sink(writer_context, create_endpoint(emulator))
        endpoint_id = create_endpoint(
            emulator,
            type="generic",
            scheme="UsernamePassword",
            parameters={"username": "flux", "password": "old"},
        )
        return make_sink(writer_context, endpoint_id)


def test_write_replaces_only_the_secret_parameter(
    emulator: RunningEmulator, writer_context: SinkContext
) -> None:
    endpoint_id = create_endpoint(
        emulator,
        type="generic",
        scheme="UsernamePassword",
        parameters={"username": "flux", "password": "old"},
    )
    before = document(emulator, writer_context, endpoint_id)
    pat, meta = fake_pat(), fake_meta()
    make_sink(writer_context, endpoint_id).write(pat, meta)
    assert stored(emulator, endpoint_id) == {"username": "flux", "password": pat.reveal()}
    after = document(emulator, writer_context, endpoint_id)
    for key in ("name", "type", "url", "data"):
        assert after.document[key] == before.document[key], key
    lines = after.document["description"].splitlines()
    assert lines[0] == "Flux pulls the infra repo through this connection."
    assert lines[1].startswith("patwarden:v1 ")
    assert f"authorizationId={meta.authorization_id}" in lines[1]
    assert pat.reveal() not in after.document["description"]


def test_the_marker_line_is_replaced_not_appended(
    emulator: RunningEmulator, writer_context: SinkContext
) -> None:
    endpoint_id = create_endpoint(emulator)
    sink = make_sink(writer_context, endpoint_id)
    sink.write(fake_pat(), fake_meta())
    pat = fake_pat()
    sink.write(pat, fake_meta())
    description = document(emulator, writer_context, endpoint_id).document["description"]
    assert description.count("patwarden:v1") == 1
    assert stored(emulator, endpoint_id) == {"apitoken": pat.reveal()}


def test_a_connection_patwarden_never_wrote_is_unmanaged(
    emulator: RunningEmulator, writer_context: SinkContext
) -> None:
    sink = make_sink(writer_context, create_endpoint(emulator))
    assert sink.current_version() == SinkVersion(ref="unmanaged", authorization_id=None)


def test_an_unknown_scheme_needs_an_explicit_parameter(
    emulator: RunningEmulator, writer_context: SinkContext
) -> None:
    endpoint_id = create_endpoint(
        emulator, type="npm", scheme="ApiKey", parameters={"apikey": "old"}
    )
    with pytest.raises(SinkRefused, match=r"scheme 'ApiKey'.*apikey") as caught:
        make_sink(writer_context, endpoint_id).write(fake_pat(), fake_meta())
    assert "Set `parameter`" in str(caught.value)
    assert stored(emulator, endpoint_id) == {"apikey": "old"}
    pat = fake_pat()
    make_sink(writer_context, endpoint_id, parameter="apikey").write(pat, fake_meta())
    assert stored(emulator, endpoint_id) == {"apikey": pat.reveal()}


def test_a_missing_connection_is_refused(
    emulator: RunningEmulator, writer_context: SinkContext
) -> None:
    sink = make_sink(writer_context, "6a1c4d9e-0000-4000-8000-000000000000")
    with pytest.raises(SinkRefused, match="6a1c4d9e-0000-4000-8000-000000000000"):
        sink.write(fake_pat(), fake_meta())


def test_restore_never_changes_the_connection(
    emulator: RunningEmulator, writer_context: SinkContext
) -> None:
    endpoint_id = create_endpoint(emulator)
    sink = make_sink(writer_context, endpoint_id)
    pat = fake_pat()
    sink.write(pat, fake_meta())
    assert sink.restore(None) is False
    assert stored(emulator, endpoint_id) == {"apitoken": pat.reveal()}


def test_invalid_endpoint_id_names_the_key(writer_context: SinkContext) -> None:
    with pytest.raises(SinkConfigError, match=r"sink\.endpoint_id: String should match pattern"):
        make_sink(writer_context, "azure-repos")


def test_a_path_injecting_project_names_the_key(writer_context: SinkContext) -> None:
    # Found by tests/reliability: it passed `config check` and failed only at run time.
    spec = {
        "kind": "service_connection",
        "project": "../../_apis",
        "endpoint_id": "6a1c4d9e-0000-4000-8000-000000000000",
    }
    with pytest.raises(SinkConfigError, match=r"sink\.project: Value error, .* contains '\.\.'"):
        ServiceConnectionSink.from_spec(spec, writer_context)


def _docker_registry(emulator: RunningEmulator) -> str:
    return create_endpoint(
        emulator,
        name="registry",
        type="dockerregistry",
        scheme="UsernamePassword",
        parameters={"username": "flux", "password": "old", "email": "old-mail"},
    )


@pytest.mark.parametrize("null_parameter", ["reset", "keep"])
def test_other_secret_parameters_are_refused_before_anything_changes(
    emulator: RunningEmulator, writer_context: SinkContext, null_parameter: str
) -> None:
    # A PUT that sends `email` back as null would reset it (terraform-provider-azuredevops 550/719);
    # the sink refuses whichever behaviour the service has (the emulator switches between both).
    emulator.admin("PUT", "/policies", json={"service_endpoint_null_parameter": null_parameter})
    endpoint_id = _docker_registry(emulator)
    pat = fake_pat()
    with pytest.raises(SinkRefused) as caught:
        make_sink(writer_context, endpoint_id).write(pat, fake_meta())
    message = str(caught.value)
    assert "'registry'" in message
    assert endpoint_id in message
    assert "besides 'password': email" in message
    assert "resets them" in message
    assert "other_secrets ({email: {env: ...}})" in message
    assert pat.reveal() not in message
    assert stored(emulator, endpoint_id) == {
        "username": "flux",
        "password": "old",
        "email": "old-mail",
    }


def test_other_secrets_come_from_their_references(
    emulator: RunningEmulator,
    writer_context: SinkContext,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    endpoint_id = _docker_registry(emulator)
    monkeypatch.setenv("REGISTRY_EMAIL", "ops@example.com")
    sink = make_sink(
        writer_context, endpoint_id, other_secrets={"email": {"env": "REGISTRY_EMAIL"}}
    )
    pat = fake_pat()
    sink.write(pat, fake_meta())
    assert stored(emulator, endpoint_id) == {
        "username": "flux",
        "password": pat.reveal(),
        "email": "ops@example.com",
    }


def test_an_unreadable_other_secret_is_refused_and_named(
    emulator: RunningEmulator, writer_context: SinkContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint_id = _docker_registry(emulator)
    monkeypatch.delenv("REGISTRY_EMAIL", raising=False)
    sink = make_sink(
        writer_context, endpoint_id, other_secrets={"email": {"env": "REGISTRY_EMAIL"}}
    )
    with pytest.raises(SinkRefused, match=r"other_secrets\.email .*REGISTRY_EMAIL is not set"):
        sink.write(fake_pat(), fake_meta())
    assert stored(emulator, endpoint_id)["password"] == "old"


def test_other_secrets_refuse_a_literal_value(writer_context: SinkContext) -> None:
    with pytest.raises(SinkConfigError, match=r"other_secrets\.email") as caught:
        make_sink(
            writer_context,
            "6a1c4d9e-0000-4000-8000-000000000000",
            other_secrets={"email": "ops@example.com"},
        )
    assert "ops@example.com" not in str(caught.value)
