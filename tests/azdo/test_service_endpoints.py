from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from patwarden.azdo import AzdoNotFound, ServiceEndpoint
from patwarden.azdo.service_endpoints import secret_update, unsupplied_secrets
from patwarden.errors import ConfigError
from patwarden.secret import Secret

from .conftest import PAT_VALUE, MakeHarness, json_response

ENDPOINT_ID = "5e3b0c57-6a0f-4a2b-9c1d-2e3f4a5b6c7d"


def endpoint_json(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": ENDPOINT_ID,
        "name": "other-org-repos",
        "type": "externaltfs",
        "url": "https://dev.azure.com/fabrikam",
        "data": {"accessExternalGitServer": "true"},
        "authorization": {"scheme": "Token", "parameters": {"apitoken": None}},
        "isShared": False,
        "isReady": True,
        "owner": "Library",
        "serviceEndpointProjectReferences": [
            {"projectReference": {"id": "p1", "name": "infra"}, "name": "other-org-repos"}
        ],
    }
    body.update(overrides)
    return body


def test_get_reads_the_endpoint(make_harness: MakeHarness) -> None:
    h = make_harness(lambda r: json_response(200, endpoint_json()))
    endpoint = h.client.service_endpoints.get(
        org="contoso", project="infra", endpoint_id=ENDPOINT_ID.upper()
    )
    assert (
        h.recorder.last.url.path == f"/contoso/infra/_apis/serviceendpoint/endpoints/{ENDPOINT_ID}"
    )
    assert h.recorder.last.url.params["api-version"] == "7.1"
    assert endpoint.scheme == "Token"
    assert endpoint.parameters == {"apitoken": None}
    assert endpoint.is_ready is True


@pytest.mark.parametrize("answer", [httpx.Response(200), json_response(200, None)])
def test_an_unknown_endpoint_is_not_found(
    make_harness: MakeHarness, answer: httpx.Response
) -> None:
    h = make_harness(lambda r: answer)
    with pytest.raises(AzdoNotFound, match=ENDPOINT_ID):
        h.client.service_endpoints.get(org="contoso", project="infra", endpoint_id=ENDPOINT_ID)


def test_bad_endpoint_id_never_reaches_the_network(make_harness: MakeHarness) -> None:
    h = make_harness(lambda r: json_response(200, endpoint_json()))
    with pytest.raises(ConfigError, match="service connection id"):
        h.client.service_endpoints.get(org="contoso", project="infra", endpoint_id="x/../y")
    assert h.requests == []


def test_secret_update_replaces_one_parameter_and_keeps_everything_else() -> None:
    body = endpoint_json(
        type="generic",
        authorization={
            "scheme": "UsernamePassword",
            "parameters": {"username": "bot", "password": None},
        },
    )
    endpoint = ServiceEndpoint.from_json(body, action="test")
    update = secret_update(endpoint, parameter="password", value=Secret(PAT_VALUE))
    assert PAT_VALUE not in repr(update)
    sent = update.to_json()
    assert sent["authorization"] == {
        "scheme": "UsernamePassword",
        "parameters": {"username": "bot", "password": PAT_VALUE},
    }
    for key in ("data", "owner", "serviceEndpointProjectReferences", "url", "isShared"):
        assert sent[key] == body[key]
    # Reading again shows the original document untouched.
    assert endpoint.document["authorization"]["parameters"]["password"] is None


def test_other_secret_parameters_must_be_re_supplied() -> None:
    # A PUT that sends a secret as null resets it (terraform-provider-azuredevops 550 and 719).
    parameters = {"username": "bot", "password": None, "Email": None, "apiKey": None}
    body = endpoint_json(authorization={"scheme": "UsernamePassword", "parameters": parameters})
    endpoint = ServiceEndpoint.from_json(body, action="test")
    assert unsupplied_secrets(endpoint, parameter="PASSWORD") == ("Email", "apiKey")
    assert unsupplied_secrets(endpoint, parameter="password", supplied={"email": 1}) == ("apiKey",)
    with pytest.raises(ConfigError, match=r"other secret parameters \(Email, apiKey\)"):
        secret_update(endpoint, parameter="password", value=Secret(PAT_VALUE))
    update = secret_update(
        endpoint,
        parameter="password",
        value=Secret(PAT_VALUE),
        others={"email": Secret("e"), "APIKEY": Secret("k")},
    )
    assert update.to_json()["authorization"]["parameters"] == {
        "username": "bot",
        "password": PAT_VALUE,
        "Email": "e",
        "apiKey": "k",
    }


def test_secret_update_needs_a_scheme() -> None:
    endpoint = ServiceEndpoint.from_json(endpoint_json(authorization=None), action="test")
    with pytest.raises(ConfigError, match="no authorization scheme"):
        secret_update(endpoint, parameter="apitoken", value=Secret("v"))


def test_put_sends_the_full_endpoint_to_the_organization_url(make_harness: MakeHarness) -> None:
    h = make_harness(lambda r: json_response(200, endpoint_json()))
    endpoint = ServiceEndpoint.from_json(endpoint_json(), action="test")
    h.client.service_endpoints.put(
        org="contoso", update=secret_update(endpoint, parameter="apitoken", value=Secret(PAT_VALUE))
    )
    request = h.recorder.last
    assert request.method == "PUT"
    assert request.url.path == f"/contoso/_apis/serviceendpoint/endpoints/{ENDPOINT_ID}"
    sent = json.loads(request.content)
    assert sent["authorization"] == {"scheme": "Token", "parameters": {"apitoken": PAT_VALUE}}
    assert sent["type"] == "externaltfs"
