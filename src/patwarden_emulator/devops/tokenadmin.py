"""The emulated Token Admin API (contract §3.1): list a user's PATs, revoke authorizations.

Only Project Collection Administrators (directory ``org_admin``) holding
``vso.tokenadministration`` may call it; service principals only when the
``service_principals_token_admin`` policy says so (contract §3.3 leaves it open). The PAT value is
never returned.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from patwarden_emulator.devops.auth import (
    Caller,
    authenticate,
    invalid_access,
    organization_of,
    require_scope,
)
from patwarden_emulator.devops.state import DevopsState, Organization, PatRecord, now
from patwarden_emulator.devops.wire import (
    CaseInsensitiveRoute,
    VssError,
    bad_request,
    bool_param,
    format_seven,
    format_trimmed,
    guarded,
    int_param,
    json_body,
    not_found,
    query_param,
    require_api_version,
)

_EMPTY = "00000000-0000-0000-0000-000000000000"
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def session_token(record: PatRecord) -> dict[str, Any]:
    """A ``SessionToken`` (contract §3.1) for a stored PAT; ``token`` is always null."""
    return {
        "accessId": str(uuid.uuid5(uuid.NAMESPACE_OID, record.authorization_id)),
        "alternateToken": None,
        "authorizationId": record.authorization_id,
        "claims": None,
        "clientId": _EMPTY,
        "crossCompanyCorrelatingId": None,
        "displayName": record.display_name,
        "hostAuthorizationId": _EMPTY,
        "isPublic": False,
        "isValid": not record.revoked and not record.is_expired(now()),
        "publicData": None,
        "scope": record.scope,
        "source": None,
        "targetAccounts": None if record.target_org is None else [record.target_org],
        "token": None,
        "userId": record.user_oid,
        "validFrom": format_seven(record.valid_from),
        "validTo": format_trimmed(record.valid_to),
    }


def _admin_caller(state: DevopsState, request: Request, org: Organization) -> Caller:
    caller = authenticate(state, request, org)
    if caller.is_service_principal:
        if not state.policies.service_principals_token_admin:
            raise invalid_access("Service principals are not allowed to perform this action.")
        return caller
    require_scope(caller, "vso.tokenadministration")
    if caller.user is None or not caller.user.org_admin:
        raise VssError(
            status=401,
            message=(
                f"Access Denied: {caller.name} needs the Project Collection Administrator role "
                f"in organization {org.name} to view or revoke other users' tokens."
            ),
            type_key="AccessCheckException",
        )
    return caller


def _page_size(request: Request) -> int:
    size = int_param(request, "pageSize", default=DEFAULT_PAGE_SIZE)
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise bad_request(f"pageSize must be between 1 and {MAX_PAGE_SIZE}; got {size}.")
    return size


def _list_handler(state: DevopsState) -> Any:
    async def personal_access_tokens(request: Request) -> Response:
        """A user's PATs in this organization, ordered by authorization id, paged."""
        org = organization_of(state, request)
        _admin_caller(state, request, org)
        require_api_version(request, preview=True)
        descriptor = str(request.path_params["descriptor"])
        if not descriptor.startswith(("aad.", "msa.")) or len(descriptor) < 8:
            raise bad_request(f"'{descriptor}' is not a valid subject descriptor.")
        user = state.emu.directory.user_by_descriptor(descriptor)
        if user is None:
            raise not_found(f"The user {descriptor} was not found.", "IdentityNotFoundException")
        size = _page_size(request)
        start = query_param(request, "continuationToken")
        if start:
            try:
                start = str(uuid.UUID(start))
            except ValueError:
                raise bad_request(f"The continuation token '{start}' is not valid.") from None
        if bool_param(request, "isPublic", default=False):
            return JSONResponse({"value": [], "continuationToken": None})
        rows = state.list_pats(
            user_oid=user.oid,
            org_id=org.id,
            where="authorization_id >= ?" if start else "",
            params=(start,) if start else (),
            order="authorization_id",
            limit=size + 1,
        )
        following = rows[size].authorization_id if len(rows) > size else None
        headers = {"X-MS-ContinuationToken": following} if following else {}
        return JSONResponse(
            {"value": [session_token(r) for r in rows[:size]], "continuationToken": following},
            headers=headers,
        )

    return personal_access_tokens


def _revocations_handler(state: DevopsState) -> Any:
    async def revocations(request: Request) -> Response:
        """Revoke the listed authorizations (any user's, in this organization) → 204."""
        org = organization_of(state, request)
        _admin_caller(state, request, org)
        require_api_version(request, preview=True)
        body = await json_body(request)
        if not isinstance(body, list) or not body:
            raise bad_request('The body must be a non-empty list of {"authorizationId": ...}.')
        ids: list[str] = []
        for item in body:
            raw = item.get("authorizationId") if isinstance(item, dict) else None
            try:
                ids.append(str(uuid.UUID(str(raw))))
            except ValueError:
                raise bad_request(f"'{raw}' is not a valid authorization id.") from None
        if not bool_param(request, "isPublic", default=False):
            visible = [i for i in ids if (r := state.pat(i)) and r.target_org in (None, org.id)]
            state.revoke_pats(visible)
        return Response(status_code=204)

    return revocations


def _rules_handler(state: DevopsState) -> Any:
    async def revocation_rules(request: Request) -> Response:
        """Accept a JWT revocation rule (PATs are not self-describing: no PAT changes) → 201."""
        org = organization_of(state, request)
        _admin_caller(state, request, org)
        require_api_version(request, preview=True)
        body = await json_body(request)
        if not isinstance(body, dict) or not str(body.get("scopes") or "").strip():
            raise bad_request("A revocation rule needs 'scopes'.")
        return Response(status_code=201)

    return revocation_rules


def routes(state: DevopsState) -> list[BaseRoute]:
    """Token Admin routes."""
    base = "/vssps/{org}/_apis/tokenadmin"
    return [
        CaseInsensitiveRoute(
            base + "/personalaccesstokens/{descriptor}",
            guarded(_list_handler(state)),
            methods=["GET"],
        ),
        CaseInsensitiveRoute(
            base + "/revocations", guarded(_revocations_handler(state)), methods=["POST"]
        ),
        CaseInsensitiveRoute(
            base + "/revocationrules", guarded(_rules_handler(state)), methods=["POST"]
        ),
    ]
