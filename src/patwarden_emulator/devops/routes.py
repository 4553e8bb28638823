"""The emulated Azure DevOps: PAT Lifecycle, Token Admin, Graph, core and Library APIs.

Served under ``/vssps/{org}/...`` (the ``vssps.dev.azure.com`` host) and ``/devops/{org}/...``
(``dev.azure.com``). This module assembles the routes of the ``devops_*`` modules and owns the
two cheap "does this credential work?" endpoints of contract §6: ``_apis/connectionData`` and
``_apis/projects``. See ``docs/emulator/devops.md``.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from patwarden_emulator.context import Emulator
from patwarden_emulator.devops import admin as devops_admin
from patwarden_emulator.devops import graph as devops_graph
from patwarden_emulator.devops import locations as devops_locations
from patwarden_emulator.devops import pats as devops_pats
from patwarden_emulator.devops import service_endpoints as devops_service_endpoints
from patwarden_emulator.devops import tokenadmin as devops_tokenadmin
from patwarden_emulator.devops import variable_groups as devops_variable_groups
from patwarden_emulator.devops.auth import Caller, authenticate, organization_of, require_scope
from patwarden_emulator.devops.service_endpoints import ServiceEndpoints
from patwarden_emulator.devops.state import DevopsState, Organization, devops_state, now
from patwarden_emulator.devops.variable_groups import VariableGroups
from patwarden_emulator.devops.wire import (
    CaseInsensitiveRoute,
    format_trimmed,
    guarded,
    int_param,
    require_api_version,
    vss_error_response,
)

# The Azure DevOps service owner id that real connectionData responses carry.
_SERVICE_OWNER = "00025394-6065-48ca-87d9-7f5672854ef7"


@dataclass(frozen=True)
class DevopsServices:
    """The state objects of the emulated Azure DevOps (one set per emulator)."""

    state: DevopsState
    groups: VariableGroups
    endpoints: ServiceEndpoints


def services(emu: Emulator) -> DevopsServices:
    """The :class:`DevopsServices` of *emu*, created on first use."""
    found = emu.runtime.get("devops_services")
    if isinstance(found, DevopsServices):
        return found
    state = devops_state(emu)
    created = DevopsServices(
        state=state, groups=VariableGroups(state), endpoints=ServiceEndpoints(state)
    )
    emu.runtime["devops_services"] = created
    return created


def _identity(state: DevopsState, caller: Caller) -> dict[str, Any]:
    tenant = state.emu.tenant_id
    if caller.user is not None:
        user = caller.user
        descriptor = f"Microsoft.IdentityModel.Claims.ClaimsIdentity;{tenant}\\{user.upn}"
        subject, display, account = user.descriptor, user.display_name, user.upn
    else:
        encoded = base64.urlsafe_b64encode(caller.object_id.encode()).rstrip(b"=").decode()
        descriptor = (
            f"Microsoft.VisualStudio.Services.Claims.AadServicePrincipal;{tenant}\\"
            f"{caller.object_id}"
        )
        subject, display, account = f"aadsp.{encoded}", caller.name, caller.object_id
    return {
        "id": caller.object_id,
        "descriptor": descriptor,
        "subjectDescriptor": subject,
        "providerDisplayName": display,
        "isActive": True,
        "properties": {"Account": {"$type": "System.String", "$value": account}},
        "resourceVersion": 2,
        "metaTypeId": 0,
    }


def _connection_data(state: DevopsState, org: Organization, caller: Caller) -> dict[str, Any]:
    identity = _identity(state, caller)
    deployment = state.store.meta_or_create("devops_deployment_id", lambda: str(uuid.uuid4()))
    return {
        "authenticatedUser": identity,
        "authorizedUser": identity,
        "instanceId": org.id,
        "deploymentId": deployment,
        "deploymentType": "hosted",
        "locationServiceData": {
            "serviceOwner": _SERVICE_OWNER,
            "defaultAccessMappingMoniker": "PublicAccessMapping",
            "lastChangeId": 1,
            "lastChangeId64": 1,
        },
    }


def _core_routes(state: DevopsState) -> list[BaseRoute]:
    async def connection_data(request: Request) -> Response:
        """Any valid credential of this organization, whatever its scopes (contract §6)."""
        org = organization_of(state, request)
        caller = authenticate(state, request, org)
        return JSONResponse(_connection_data(state, org, caller))

    async def projects(request: Request) -> Response:
        """``GET _apis/projects``: needs a ``vso.project``/``vso.profile``-family scope.

        ``$top`` (default 100), ``$skip`` and ``continuationToken`` (``Projects_List`` in
        ``specification/core/7.1/core.json``): the token is the number of projects already
        returned [INF], sent back in ``X-MS-ContinuationToken`` while more remain; it takes the
        place of ``$skip``.
        """
        org = organization_of(state, request)
        require_scope(authenticate(state, request, org), "vso.project", "vso.profile")
        require_api_version(request, preview=False)
        skip = max(int_param(request, "$skip", default=0), 0)
        skip = max(int_param(request, "continuationToken", default=skip), 0)
        top = max(int_param(request, "$top", default=100), 0)
        every = state.projects(org.id)
        found = every[skip : skip + top]
        more = skip + top < len(every)
        headers = {"X-MS-ContinuationToken": str(skip + top)} if more else {}
        stamp = format_trimmed(now())
        base = f"{state.emu.azure_devops_url}/{org.name}/_apis/projects"
        value = [
            {
                "id": project["id"],
                "name": project["name"],
                "description": "",
                "url": f"{base}/{project['id']}",
                "state": "wellFormed",
                "revision": 1,
                "visibility": "private",
                "lastUpdateTime": stamp,
            }
            for project in found
        ]
        return JSONResponse({"count": len(value), "value": value}, headers=headers)

    return [
        CaseInsensitiveRoute(
            "/devops/{org}/_apis/connectionData", guarded(connection_data), methods=["GET"]
        ),
        CaseInsensitiveRoute(
            "/vssps/{org}/_apis/connectionData", guarded(connection_data), methods=["GET"]
        ),
        CaseInsensitiveRoute("/devops/{org}/_apis/projects", guarded(projects), methods=["GET"]),
    ]


def unknown_route(request: Request, status: int) -> Response:
    """The VSS envelope for a path no emulated API serves (404) or a method it does not (405).

    The real service answers an unknown ``_apis`` path with ASP.NET's "controller … was not
    found" ``HttpException`` in the envelope (hkarthik7/azure-devops-java-sdk issue 103 shows it
    for unknown endpoints); the 405 text is ASP.NET Web API's [INF].
    """
    path = "/" + request.url.path.lstrip("/").partition("/")[2]  # without /devops or /vssps
    if status == 405:
        message = f"The requested resource does not support http method '{request.method}'."
    else:
        message = (
            f"The controller for path '{path}' was not found or does not implement IController."
        )
    return vss_error_response(
        status=status, message=message, type_key="HttpException", namespace="System.Web"
    )


def routes(emu: Emulator) -> list[BaseRoute]:
    """The Azure DevOps service routes."""
    found = services(emu)
    return [
        *devops_pats.routes(found.state),
        *devops_tokenadmin.routes(found.state),
        *devops_graph.routes(found.state),
        *_core_routes(found.state),
        *devops_locations.routes(found.state),
        *devops_variable_groups.routes(found.state, found.groups),
        *devops_service_endpoints.routes(found.state, found.endpoints),
    ]


def admin_routes(emu: Emulator) -> list[BaseRoute]:
    """The Azure DevOps admin routes (mounted by the admin module under ``/_admin``)."""
    found = services(emu)
    return devops_admin.routes(found.state, found.groups, found.endpoints)


def reset(emu: Emulator) -> None:
    """Back to freshly seeded: no PATs, groups, endpoints, extra orgs/projects or policies."""
    found = services(emu)
    found.groups.reset()
    found.endpoints.reset()
    found.state.reset()
