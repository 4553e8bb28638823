"""The emulated Graph API: ``{vssps}/{org}/_apis/graph/users[/{descriptor}]`` and
``graph/membershipstates``.

Users come from the emulator directory (every directory user is a member of every emulated
organization). ``GraphUser`` has no enabled flag, so, as in the real service, a user's state is
shown two ways: ``isDeletedInOrigin: true`` for a user removed from Entra, and
``GET graph/membershipstates/{descriptor}`` → ``{"active": false}`` for a disabled or removed one.
"""

from __future__ import annotations

import base64
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from patwarden_emulator.devops.auth import authenticate, organization_of, require_scope
from patwarden_emulator.devops.state import DevopsState, Organization
from patwarden_emulator.devops.wire import (
    CaseInsensitiveRoute,
    bad_request,
    guarded,
    not_found,
    query_param,
    require_api_version,
)
from patwarden_emulator.directory import User

_CURSOR_PREFIX = "graph-users:"


def graph_user(state: DevopsState, org: Organization, user: User) -> dict[str, Any]:
    """A ``GraphUser`` for a directory user."""
    url = f"{state.emu.vssps_url}/{org.name}/_apis/Graph/Users/{user.descriptor}"
    document: dict[str, Any] = {
        "subjectKind": "user",
        "metaType": "member",
        "directoryAlias": user.upn.split("@", 1)[0],
        "domain": state.emu.tenant_id,
        "principalName": user.upn,
        "mailAddress": user.upn,
        "origin": "aad",
        "originId": user.oid,
        "displayName": user.display_name,
        "_links": {"self": {"href": url}},
        "url": url,
        "descriptor": user.descriptor,
    }
    if user.removed:
        document["isDeletedInOrigin"] = True
    return document


def _encode(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{offset}".encode()).decode()


def _decode(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        text = ""
    offset = text.removeprefix(_CURSOR_PREFIX)
    if not text.startswith(_CURSOR_PREFIX) or not offset.isdigit():
        raise bad_request(f"The continuation token '{token}' is not valid.")
    return int(offset)


def _list_handler(state: DevopsState) -> Any:
    async def graph_users(request: Request) -> Response:
        """List users, one page per call, chained by ``X-MS-ContinuationToken``."""
        org = organization_of(state, request)
        caller = authenticate(state, request, org)
        require_scope(caller, "vso.graph")
        require_api_version(request, preview=True)
        types = query_param(request, "subjectTypes")
        if types and "aad" not in [item.strip().lower() for item in types.split(",")]:
            return JSONResponse({"count": 0, "value": []})
        token = query_param(request, "continuationToken")
        offset = _decode(token) if token else 0
        size = state.policies.graph_page_size
        users = state.emu.directory.users(offset=offset, limit=size + 1)
        page = [graph_user(state, org, user) for user in users[:size]]
        headers = {"X-MS-ContinuationToken": _encode(offset + size)} if len(users) > size else {}
        return JSONResponse({"count": len(page), "value": page}, headers=headers)

    return graph_users


def _membership_handler(state: DevopsState) -> Any:
    async def membership_state(request: Request) -> Response:
        """``GraphMembershipState``: ``active`` is false for a disabled or removed user."""
        org = organization_of(state, request)
        caller = authenticate(state, request, org)
        require_scope(caller, "vso.graph")
        require_api_version(request, preview=True)
        descriptor = str(request.path_params["descriptor"])
        user = state.emu.directory.user_by_descriptor(descriptor)
        if user is None:
            raise not_found(
                f"The subject with descriptor {descriptor} was not found.",
                "GraphSubjectNotFoundException",
            )
        url = f"{state.emu.vssps_url}/{org.name}/_apis/Graph/MembershipStates/{descriptor}"
        return JSONResponse(
            {"_links": {"self": {"href": url}}, "active": user.enabled and not user.removed}
        )

    return membership_state


def _user_handler(state: DevopsState) -> Any:
    async def get_user(request: Request) -> Response:
        """``GET graph/users/{userDescriptor}`` → ``GraphUser`` (``Users_Get`` in
        ``specification/graph/7.1/graph.json``); 404 for an unknown descriptor."""
        org = organization_of(state, request)
        require_scope(authenticate(state, request, org), "vso.graph")
        require_api_version(request, preview=True)
        descriptor = str(request.path_params["descriptor"])
        user = state.emu.directory.user_by_descriptor(descriptor)
        if user is None:
            raise not_found(
                f"The subject with descriptor {descriptor} was not found.",
                "GraphSubjectNotFoundException",
            )
        return JSONResponse(graph_user(state, org, user))

    return get_user


def routes(state: DevopsState) -> list[BaseRoute]:
    """Graph users and membership states."""
    return [
        CaseInsensitiveRoute(
            "/vssps/{org}/_apis/graph/users", guarded(_list_handler(state)), methods=["GET"]
        ),
        CaseInsensitiveRoute(
            "/vssps/{org}/_apis/graph/users/{descriptor}",
            guarded(_user_handler(state)),
            methods=["GET"],
        ),
        CaseInsensitiveRoute(
            "/vssps/{org}/_apis/graph/membershipstates/{descriptor}",
            guarded(_membership_handler(state)),
            methods=["GET"],
        ),
    ]
