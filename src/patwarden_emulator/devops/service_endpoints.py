"""Emulated service connections (contract §9.2): GET project-scoped, PUT org-scoped full body.

Secret ``authorization.parameters`` read back as ``null``. A PUT is a full replacement: omitted
parameters are dropped and a parameter sent as ``null`` is **reset** (stored as null), as public
reports say the real service does (terraform-provider-azuredevops issues 550 and 719: updating a
connection's description unset its password). The policy
``service_endpoint_null_parameter: keep`` switches to the old emulation, where a ``null`` keeps
the stored value. Values are stored in clear in the emulator database: tests read them through
``GET /_admin/service-endpoints/{id}/secrets``.

The project's list (``Endpoints_GetServiceEndpoints`` / ``Endpoints_GetServiceEndpointsByNames`` in
``specification/serviceEndpoint/7.1/serviceEndpoint.json``, MicrosoftDocs/vsts-rest-api-specs)
filters by ``type``, ``authSchemes``, ``endpointIds`` or ``endpointNames`` and answers
``{"count", "value"}``; ``owner``, ``includeFailed`` and ``includeDetails`` are accepted and
ignored.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from patwarden_emulator.devops.auth import authenticate, organization_of, require_scope
from patwarden_emulator.devops.identities import render_stored
from patwarden_emulator.devops.state import DevopsState, Organization
from patwarden_emulator.devops.wire import (
    CaseInsensitiveRoute,
    bad_request,
    guarded,
    json_body,
    not_found,
    query_param,
    require_api_version,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS devops_service_endpoints (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    url TEXT NOT NULL,
    scheme TEXT NOT NULL,
    parameters TEXT NOT NULL,
    data TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL
);
"""

# Authorization parameters that are not confidential (every other one reads back as null).
PUBLIC_PARAMETERS = frozenset(
    {
        "username",
        "tenantid",
        "serviceprincipalid",
        "authenticationtype",
        "scope",
        "role",
        "servercertthumbprint",
        "workspaceid",
    }
)


def _public(parameters: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if k.lower() in PUBLIC_PARAMETERS else None) for k, v in parameters.items()}


def merge_parameters(
    new: object, *, previous: dict[str, Any], keep_null: bool = False
) -> dict[str, Any]:
    """The stored parameters after a PUT: *new* replaces all; a ``null`` resets the parameter
    (stored as null), or keeps the old value with *keep_null*.

    Raises:
        VssError: 400 when *new* is not an object.
    """
    if not isinstance(new, dict):
        raise bad_request("'authorization.parameters' must be an object.")
    old = {k.lower(): v for k, v in previous.items()}
    merged: dict[str, Any] = {}
    for key, value in new.items():
        if value is None:
            merged[key] = old.get(key.lower()) if keep_null else None
        else:
            merged[key] = str(value)
    return merged


class ServiceEndpoints:
    """The ``devops_service_endpoints`` table."""

    def __init__(self, state: DevopsState) -> None:
        self.state = state
        self.store = state.store
        self.store.ensure_schema(SCHEMA)

    def create(
        self, *, org: Organization, project: dict[str, str], spec: dict[str, Any], by: str
    ) -> str:
        """Insert an endpoint from an admin spec and return its id (*by*: a stored identity)."""
        endpoint_id = str(uuid.uuid4())
        self.store.execute(
            "INSERT INTO devops_service_endpoints (id, org_id, project_id, name, type, url, scheme,"
            " parameters, data, description, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                endpoint_id,
                org.id,
                project["id"],
                str(spec["name"]),
                str(spec.get("type") or "externaltfs"),
                str(spec.get("url") or f"{self.state.emu.azure_devops_url}/{org.name}"),
                str(spec.get("scheme") or "Token"),
                json.dumps({k: str(v) for k, v in dict(spec.get("parameters") or {}).items()}),
                json.dumps(spec.get("data") or {}),
                str(spec.get("description") or ""),
                by,
            ),
        )
        return endpoint_id

    def row(self, org: Organization, endpoint_id: str) -> Any:
        """The raw row of an endpoint of *org*, or None."""
        return self.store.one(
            "SELECT * FROM devops_service_endpoints WHERE id = ? AND org_id = ?",
            (endpoint_id.lower(), org.id),
        )

    def secrets(self, endpoint_id: str) -> dict[str, Any] | None:
        """Stored authorization parameters with their values (admin API)."""
        row = self.store.one(
            "SELECT parameters FROM devops_service_endpoints WHERE id = ?", (endpoint_id.lower(),)
        )
        return None if row is None else dict(json.loads(row["parameters"]))

    def to_json(self, row: Any) -> dict[str, Any]:
        """The ``ServiceEndpoint`` document (secret parameters null)."""
        project = self.store.one(
            "SELECT id, name FROM devops_projects WHERE id = ?", (row["project_id"],)
        )
        reference = {"id": row["project_id"], "name": project["name"] if project else None}
        return {
            "data": json.loads(row["data"]),
            "id": row["id"],
            "name": row["name"],
            "type": row["type"],
            "url": row["url"],
            "createdBy": render_stored(self.state, row["org_id"], row["created_by"]),
            "description": row["description"],
            "authorization": {
                "parameters": _public(json.loads(row["parameters"])),
                "scheme": row["scheme"],
            },
            "isShared": False,
            "isReady": True,
            "isOutdated": False,
            "operationStatus": None,
            "owner": "Library",
            "serviceEndpointProjectReferences": [
                {"projectReference": reference, "name": row["name"], "description": ""}
            ],
        }

    def reset(self) -> None:
        """Drop every endpoint."""
        self.store.execute("DELETE FROM devops_service_endpoints")


def _not_found(endpoint_id: object) -> Exception:
    return not_found(
        f"Service endpoint with id {endpoint_id} does not exist.",
        "ServiceEndpointNotFoundException",
    )


def _listed(request: Request, name: str) -> set[str] | None:
    raw = query_param(request, name)
    if raw is None:
        return None
    return {item.strip().lower() for item in raw.split(",") if item.strip()}


def _matches(row: Any, request: Request) -> bool:
    """Whether an endpoint row passes the list filters of the request."""
    kind = query_param(request, "type")
    if kind is not None and row["type"].lower() != kind.lower():
        return False
    wanted = {
        "authSchemes": row["scheme"].lower(),
        "endpointIds": row["id"].lower(),
        "endpointNames": row["name"].lower(),
    }
    for parameter, value in wanted.items():
        listed = _listed(request, parameter)
        if listed and value not in listed:
            return False
    return True


def routes(state: DevopsState, endpoints: ServiceEndpoints) -> list[BaseRoute]:
    """Service endpoint routes."""

    async def get_endpoint(request: Request) -> Response:
        org = organization_of(state, request)
        require_scope(authenticate(state, request, org), "vso.serviceendpoint")
        require_api_version(request, preview=False)
        project = state.require_project(org, str(request.path_params["project"]))
        endpoint_id = str(request.path_params["endpoint_id"])
        row = endpoints.row(org, endpoint_id)
        if row is None or row["project_id"] != project["id"]:
            raise _not_found(endpoint_id)
        return JSONResponse(endpoints.to_json(row))

    async def list_endpoints(request: Request) -> Response:
        org = organization_of(state, request)
        require_scope(authenticate(state, request, org), "vso.serviceendpoint")
        require_api_version(request, preview=False)
        project = state.require_project(org, str(request.path_params["project"]))
        rows = state.store.query(
            "SELECT * FROM devops_service_endpoints WHERE org_id = ? AND project_id = ?"
            " ORDER BY name COLLATE NOCASE, id",
            (org.id, project["id"]),
        )
        found = [row for row in rows if _matches(row, request)]
        value = [endpoints.to_json(row) for row in found]
        return JSONResponse({"count": len(value), "value": value})

    async def put_endpoint(request: Request) -> Response:
        org = organization_of(state, request)
        require_scope(authenticate(state, request, org), "vso.serviceendpoint_manage")
        require_api_version(request, preview=False)
        endpoint_id = str(request.path_params["endpoint_id"])
        row = endpoints.row(org, endpoint_id)
        if row is None:
            raise _not_found(endpoint_id)
        body = await json_body(request)
        if not isinstance(body, dict):
            raise bad_request("The body must be a ServiceEndpoint object.")
        if body.get("id") not in (None, row["id"]):
            raise bad_request(f"The endpoint id in the body does not match {endpoint_id}.")
        auth = body.get("authorization")
        if auth is None:
            parameters, scheme = json.loads(row["parameters"]), row["scheme"]
        elif isinstance(auth, dict):
            previous = json.loads(row["parameters"])
            parameters = merge_parameters(
                auth.get("parameters") or {},
                previous=previous,
                keep_null=state.policies.service_endpoint_null_parameter == "keep",
            )
            scheme = str(auth.get("scheme") or row["scheme"])
        else:
            raise bad_request("'authorization' must be an object.")
        state.store.execute(
            "UPDATE devops_service_endpoints SET name = ?, type = ?, url = ?, scheme = ?,"
            " parameters = ?, data = ?, description = ? WHERE id = ?",
            (
                str(body.get("name") or row["name"]),
                str(body.get("type") or row["type"]),
                str(body.get("url") or row["url"]),
                scheme,
                json.dumps(parameters),
                json.dumps(body["data"] if isinstance(body.get("data"), dict) else {}),
                str(body.get("description") or ""),
                row["id"],
            ),
        )
        return JSONResponse(endpoints.to_json(endpoints.row(org, row["id"])))

    return [
        CaseInsensitiveRoute(
            "/devops/{org}/{project}/_apis/serviceendpoint/endpoints",
            guarded(list_endpoints),
            methods=["GET"],
        ),
        CaseInsensitiveRoute(
            "/devops/{org}/{project}/_apis/serviceendpoint/endpoints/{endpoint_id}",
            guarded(get_endpoint),
            methods=["GET"],
        ),
        CaseInsensitiveRoute(
            "/devops/{org}/_apis/serviceendpoint/endpoints/{endpoint_id}",
            guarded(put_endpoint),
            methods=["PUT"],
        ),
    ]
