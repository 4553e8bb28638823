"""Route discovery for the official clients: ``OPTIONS {org}/_apis`` and ``_apis/ResourceAreas``.

The official ``azure-devops`` Python SDK (and the .NET client) never hard-code URLs: a client
type names its resource area id, the connection looks the area's host up through
``GET {org}/_apis/ResourceAreas`` (``ResourceAreaInfo``: ``id``, ``name``, ``locationUrl``), and
each call names a *location id* that the client resolves through ``OPTIONS {host}/_apis`` into an
``ApiResourceLocation`` (``id``, ``area``, ``resourceName``, ``routeTemplate``,
``resourceVersion``, ``minVersion``, ``maxVersion``, ``releasedVersion``), from which it builds the
URL and negotiates the api-version.

The location ids, area ids and resource versions below are the ones hard-coded in the SDK's
client modules (microsoft/azure-devops-python-api, ``azure-devops/azure/devops/v7_1/*/…_client.py``:
``location``, ``core``, ``token_admin``, ``graph``, ``task_agent``, ``service_endpoint``); the
route templates follow the paths of the REST specs (MicrosoftDocs/vsts-rest-api-specs
``specification/{core,graph,tokenAdmin,distributedTask,serviceEndpoint}/7.1/*.json``). Only the
areas the emulator serves are listed, each on its own host (``dev.azure.com`` or
``vssps.dev.azure.com``). ``minVersion`` values are approximations [INF]; ``maxVersion`` is 7.2.

``ResourceAreas`` answers anonymously (the real service lets tools find an organization's hosts
without signing in); ``OPTIONS`` needs any valid credential of the organization, like
``connectionData`` [INF].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from patwarden_emulator.devops.auth import authenticate, organization_of
from patwarden_emulator.devops.state import DevopsState, Organization
from patwarden_emulator.devops.wire import CaseInsensitiveRoute, guarded, not_found

DEVOPS = "devops"  # dev.azure.com
VSSPS = "vssps"  # vssps.dev.azure.com
BOTH = (DEVOPS, VSSPS)


@dataclass(frozen=True)
class Location:
    """One ``ApiResourceLocation``."""

    id: str
    area: str
    resource: str
    route: str
    resource_version: int
    min_version: str
    released: str
    hosts: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "area": self.area,
            "resourceName": self.resource,
            "routeTemplate": self.route,
            "resourceVersion": self.resource_version,
            "minVersion": self.min_version,
            "maxVersion": "7.2",
            "releasedVersion": self.released,
        }


LOCATIONS = (
    Location(
        "00d9565f-ed9c-4a06-9a50-00e7896ccab4",
        "Location",
        "ConnectionData",
        "_apis/{resource}",
        1,
        "1.0",
        "0.0",
        BOTH,
    ),
    Location(
        "e81700f7-3be2-46de-8624-2eb35882fcaa",
        "Location",
        "ResourceAreas",
        "_apis/{resource}/{areaId}",
        1,
        "3.2",
        "0.0",
        BOTH,
    ),
    Location(
        "603fe2ac-9723-48b9-88ad-09305aa6c6e1",
        "core",
        "projects",
        "_apis/{resource}/{*projectId}",
        4,
        "1.0",
        "7.1",
        (DEVOPS,),
    ),
    Location(
        "af68438b-ed04-4407-9eb6-f1dbae3f922e",
        "TokenAdmin",
        "PersonalAccessTokens",
        "_apis/{area}/{resource}/{subjectDescriptor}",
        1,
        "5.0",
        "0.0",
        (VSSPS,),
    ),
    Location(
        "a9c08b2c-5466-4e22-8626-1ff304ffdf0f",
        "TokenAdmin",
        "Revocations",
        "_apis/{area}/{resource}",
        1,
        "5.0",
        "0.0",
        (VSSPS,),
    ),
    Location(
        "ee4afb16-e7ab-4ed8-9d4b-4ef3e78f97e4",
        "TokenAdmin",
        "RevocationRules",
        "_apis/{area}/{resource}",
        1,
        "5.0",
        "0.0",
        (VSSPS,),
    ),
    Location(
        "005e26ec-6b77-4e4f-a986-b3827bf241f5",
        "Graph",
        "Users",
        "_apis/{area}/{resource}/{userDescriptor}",
        1,
        "4.0",
        "0.0",
        (VSSPS,),
    ),
    Location(
        "1ffe5c94-1144-4191-907b-d0211cad36a8",
        "Graph",
        "MembershipStates",
        "_apis/{area}/{resource}/{subjectDescriptor}",
        1,
        "4.0",
        "0.0",
        (VSSPS,),
    ),
    Location(
        "f5b09dd5-9d54-45a1-8b5a-1c8287d634cc",
        "distributedtask",
        "variablegroups",
        "{project}/_apis/{area}/{resource}/{groupId}",
        2,
        "3.1",
        "7.1",
        (DEVOPS,),
    ),
    Location(
        "ef5b7057-ffc3-4c77-bbad-c10b4a4abcc7",
        "distributedtask",
        "variablegroups",
        "_apis/{area}/{resource}/{groupId}",
        2,
        "5.0",
        "7.1",
        (DEVOPS,),
    ),
    Location(
        "e85f1c62-adfc-4b74-b618-11a150fb195e",
        "serviceendpoint",
        "endpoints",
        "{project}/_apis/{area}/{resource}/{endpointId}",
        4,
        "4.1",
        "7.1",
        (DEVOPS,),
    ),
    Location(
        "14e48fdc-2c8b-41ce-a0c3-e26f6cc55bd0",
        "serviceendpoint",
        "endpoints",
        "_apis/{area}/{resource}/{endpointId}",
        4,
        "5.0",
        "7.1",
        (DEVOPS,),
    ),
)

# Resource area id → (name, host): the ``resource_area_identifier`` of each SDK client.
RESOURCE_AREAS = {
    "79134c72-4a58-4b42-976c-04e7115f32bf": ("core", DEVOPS),
    "a85b8835-c1a1-4aac-ae97-1c3d0ba72dbd": ("distributedtask", DEVOPS),
    "1814ab31-2f4f-4a9f-8761-f4d77dc5a5d7": ("serviceendpoint", DEVOPS),
    "bb1e7ec9-e901-4b68-999a-de7012b920f8": ("Graph", VSSPS),
    "af68438b-ed04-4407-9eb6-f1dbae3f922e": ("TokenAdmin", VSSPS),
}


def locations_for(host: str) -> list[dict[str, Any]]:
    """The ``ApiResourceLocation`` documents registered on *host* (``devops``/``vssps``)."""
    return [location.to_json() for location in LOCATIONS if host in location.hosts]


def _area(state: DevopsState, org: Organization, area_id: str) -> dict[str, str]:
    name, host = RESOURCE_AREAS[area_id]
    base = state.emu.azure_devops_url if host == DEVOPS else state.emu.vssps_url
    return {"id": area_id, "name": name, "locationUrl": f"{base}/{org.name}/"}


def routes(state: DevopsState) -> list[BaseRoute]:
    """OPTIONS ``_apis`` and ``_apis/ResourceAreas[/{areaId}]`` on both hosts."""

    def options_handler(host: str) -> Any:
        async def api_locations(request: Request) -> Response:
            org = organization_of(state, request)
            authenticate(state, request, org)
            value = locations_for(host)
            return JSONResponse({"count": len(value), "value": value})

        return api_locations

    async def resource_areas(request: Request) -> Response:
        org = organization_of(state, request)
        value = [_area(state, org, area_id) for area_id in RESOURCE_AREAS]
        return JSONResponse({"count": len(value), "value": value})

    async def resource_area(request: Request) -> Response:
        org = organization_of(state, request)
        area_id = str(request.path_params["area_id"]).lower()
        if area_id not in RESOURCE_AREAS:
            raise not_found(
                f"The resource area {area_id} was not found.", "ResourceAreaNotFoundException"
            )
        return JSONResponse(_area(state, org, area_id))

    found: list[BaseRoute] = []
    for host in BOTH:
        found += [
            CaseInsensitiveRoute(
                f"/{host}/{{org}}/_apis", guarded(options_handler(host)), methods=["OPTIONS"]
            ),
            CaseInsensitiveRoute(
                f"/{host}/{{org}}/_apis/ResourceAreas", guarded(resource_areas), methods=["GET"]
            ),
            CaseInsensitiveRoute(
                f"/{host}/{{org}}/_apis/ResourceAreas/{{area_id}}",
                guarded(resource_area),
                methods=["GET"],
            ),
        ]
    return found
