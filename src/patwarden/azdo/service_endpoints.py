"""Service connections (service endpoints): read one and write it back with one secret changed.

GET ``{azure_devops_url}/{org}/{project}/_apis/serviceendpoint/endpoints/{id}``; PUT
``{azure_devops_url}/{org}/_apis/serviceendpoint/endpoints/{id}`` with the full endpoint
(api-version 7.1, contract §9.2). Secret parameters read back as ``null``; PAT-bearing types keep
the PAT in e.g. ``apitoken`` (``externaltfs``, scheme ``Token``) or ``password``
(``UsernamePassword``). Fields this client does not model are sent back untouched.

A PUT that sends a secret parameter as ``null`` (as every read returns it) **resets** it on the
real service (terraform-provider-azuredevops issues 550 and 719, contract §9.2), so an update must
re-supply every secret parameter it sends: :func:`unsupplied_secrets` names those it cannot, and
:func:`secret_update` refuses to build such a body.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from patwarden.azdo import validation
from patwarden.azdo.constants import SERVICE_ENDPOINT_API_VERSION
from patwarden.azdo.errors import AzdoNotFound
from patwarden.azdo.models import as_object, optional_bool, optional_str, required_str
from patwarden.azdo.resource import ResourceClient
from patwarden.azdo.responses import json_body
from patwarden.errors import ConfigError
from patwarden.secret import Secret


@dataclass(frozen=True, kw_only=True)
class ServiceEndpoint:
    """A service connection as read; ``parameters`` hold ``None`` for secret values."""

    id: str
    name: str
    type: str
    url: str | None
    scheme: str | None
    parameters: Mapping[str, str | None] = field(hash=False)
    is_ready: bool | None
    # The whole JSON object as read, so an update sends back every field we do not model.
    document: Mapping[str, Any] = field(repr=False, hash=False)

    @classmethod
    def from_json(cls, data: object, *, action: str) -> ServiceEndpoint:
        """Parse a ``ServiceEndpoint``.

        Raises:
            AzdoUnexpectedResponse: ``id`` or ``name`` is missing.
        """
        obj = as_object(data, what="the service endpoint", action=action)
        auth = obj.get("authorization")
        auth = auth if isinstance(auth, Mapping) else {}
        params = auth.get("parameters")
        params = params if isinstance(params, Mapping) else {}
        return cls(
            id=required_str(obj, "id", action=action).lower(),
            name=required_str(obj, "name", action=action),
            type=optional_str(obj, "type") or "",
            url=optional_str(obj, "url"),
            scheme=optional_str(auth, "scheme"),
            parameters=MappingProxyType(
                {str(k): v if isinstance(v, str) else None for k, v in params.items()}
            ),
            is_ready=optional_bool(obj, "isReady"),
            document=MappingProxyType(copy.deepcopy(dict(obj))),
        )


@dataclass(frozen=True, kw_only=True)
class ServiceEndpointUpdate:
    """The complete PUT body for an endpoint with new authorization parameters."""

    endpoint_id: str
    name: str
    scheme: str
    parameters: Mapping[str, str | Secret | None] = field(hash=False)
    document: Mapping[str, Any] = field(repr=False, hash=False)

    def to_json(self) -> dict[str, Any]:
        """The wire form; reveals the new secret value, so call it only while sending."""
        body = copy.deepcopy(dict(self.document))
        body["authorization"] = {
            **(body.get("authorization") or {}),
            "scheme": self.scheme,
            "parameters": {
                k: v.reveal() if isinstance(v, Secret) else v for k, v in self.parameters.items()
            },
        }
        return body


def unsupplied_secrets(
    endpoint: ServiceEndpoint, *, parameter: str, supplied: Mapping[str, object] | None = None
) -> tuple[str, ...]:
    """The secret parameters (read back as ``null``) other than *parameter* that *supplied* lacks.

    Sending them back as ``null`` would reset them (see the module docstring). Names compare
    case-insensitively, as the service does.
    """
    given = {name.lower() for name in (supplied or {})} | {parameter.lower()}
    return tuple(
        sorted(
            name
            for name, value in endpoint.parameters.items()
            if value is None and name.lower() not in given
        )
    )


def secret_update(
    endpoint: ServiceEndpoint,
    *,
    parameter: str,
    value: Secret,
    others: Mapping[str, Secret] | None = None,
) -> ServiceEndpointUpdate:
    """Return the PUT body that sets authorization parameter *parameter* to *value*.

    *others* re-supplies the endpoint's other secret parameters (by name); every other parameter
    and field goes back as read.

    Raises:
        ConfigError: the endpoint has no authorization scheme, *parameter* is empty, or the
            endpoint has other secret parameters that *others* does not re-supply (a PUT would
            reset them).
    """
    if not endpoint.scheme:
        raise ConfigError(
            f"Service connection {endpoint.name!r} ({endpoint.id}) has no authorization scheme "
            "to put a PAT into.",
            hint="Use a service connection that authenticates with a token or password.",
        )
    if not parameter or not parameter.strip():
        raise ConfigError(f"No parameter name given for service connection {endpoint.name!r}.")
    missing = unsupplied_secrets(endpoint, parameter=parameter, supplied=others)
    if missing:
        raise ConfigError(
            f"Service connection {endpoint.name!r} ({endpoint.id}) has other secret parameters "
            f"({', '.join(missing)}) that Azure DevOps never returns; an update would reset them.",
            hint="Re-supply each of them, or use a connection whose only secret is the PAT.",
        )
    parameters: dict[str, str | Secret | None] = dict(endpoint.parameters)
    by_lower = {name.lower(): name for name in parameters}
    for name, secret in (others or {}).items():
        parameters[by_lower.get(name.lower(), name)] = secret
    parameters[by_lower.get(parameter.lower(), parameter)] = value
    return ServiceEndpointUpdate(
        endpoint_id=endpoint.id,
        name=endpoint.name,
        scheme=endpoint.scheme,
        parameters=MappingProxyType(parameters),
        document=endpoint.document,
    )


class ServiceEndpointClient(ResourceClient):
    """Read and replace service connections (thread-safe)."""

    def get(self, *, org: str, project: str, endpoint_id: str) -> ServiceEndpoint:
        """Return service connection *endpoint_id* of *project*.

        Raises:
            ConfigError: a bad organization, project or id.
            AzdoNotFound: no such connection (the service answers 200 with no body).
        """
        eid = validation.uuid_id(endpoint_id, what="service connection id")
        url = (
            f"{self._urls.azure_devops_url}/{validation.organization(org)}/"
            f"{validation.project(project)}/_apis/serviceendpoint/endpoints/{eid}"
        )
        action = f"read service connection {eid} in project {project!r} of organization {org!r}"
        response = self._transport.send(
            "GET", url, action=action, api_version=SERVICE_ENDPOINT_API_VERSION, auth=self._auth
        )
        body = json_body(response, action=action) if response.content.strip() else None
        if body is None:
            raise AzdoNotFound(
                f"Service connection {eid} was not found in project {project!r} of organization "
                f"{org!r}.",
                status=response.status_code,
                hint="Check the id and project, and that the identity may use the connection.",
            )
        return ServiceEndpoint.from_json(body, action=action)

    def put(self, *, org: str, update: ServiceEndpointUpdate) -> ServiceEndpoint:
        """Replace the service connection with *update* (organization-level PUT).

        Raises:
            ConfigError: a bad organization or id.
            AzdoAccessDenied: the identity is not an Administrator of the connection.
        """
        eid = validation.uuid_id(update.endpoint_id, what="service connection id")
        url = (
            f"{self._urls.azure_devops_url}/{validation.organization(org)}"
            f"/_apis/serviceendpoint/endpoints/{eid}"
        )
        action = f"update service connection {update.name!r} ({eid}) in organization {org!r}"
        response = self._transport.send(
            "PUT",
            url,
            action=action,
            api_version=SERVICE_ENDPOINT_API_VERSION,
            auth=self._auth,
            body=update.to_json(),
        )
        return ServiceEndpoint.from_json(json_body(response, action=action), action=action)
