"""The emulated PAT Lifecycle Management API: ``{vssps}/{org}/_apis/tokens/pats`` (contract §1).

Create/Get/List/Update/Revoke share one URL. Business errors are HTTP 200 with ``patTokenError``
(§1.6, §1.7); policies (§7.3) clamp or refuse; Revoke answers 204 (or 200 by policy, §1.2).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from patwarden_emulator.devops.auth import Caller, organization_of, pat_api_caller
from patwarden_emulator.devops.scopes import FULL_ACCESS, invalid_scopes
from patwarden_emulator.devops.state import DevopsState, Organization, PatRecord, now
from patwarden_emulator.devops.wire import (
    CaseInsensitiveRoute,
    bad_request,
    bool_param,
    format_seven,
    format_trimmed,
    guarded,
    int_param,
    json_body,
    parse_datetime,
    parse_pat_continuation,
    pat_continuation,
    query_param,
    require_api_version,
    sql_datetime_round,
)

DEFAULT_TOP = 20
MAX_TOP = 100
_FILTERS = {
    "active": "revoked = 0 AND valid_to_us > ?",
    "revoked": "revoked = 1",
    "expired": "revoked = 0 AND valid_to_us <= ?",
    "all": "",
}
_SORTS = {
    "displayname": ["display_name COLLATE NOCASE", "seq"],
    "displaydate": ["valid_to_us", "seq"],
    "status": [
        "CASE WHEN revoked = 1 THEN 2 WHEN valid_to_us <= ? THEN 1 ELSE 0 END",
        "display_name COLLATE NOCASE",
        "seq",
    ],
}


class PatTokenError(Exception):
    """A business error answered as HTTP 200 with ``patTokenError`` (contract §1.6)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def pat_json(record: PatRecord, *, token: str | None = None) -> dict[str, Any]:
    """A ``PatToken`` (contract §1.4); *token* only in the create response."""
    return {
        "displayName": record.display_name,
        "validTo": format_trimmed(record.valid_to),
        "scope": record.scope,
        "targetAccounts": None if record.target_org is None else [record.target_org],
        "validFrom": format_seven(record.valid_from),
        "authorizationId": record.authorization_id,
        "token": token,
    }


def _result(pat: dict[str, Any] | None) -> JSONResponse:
    return JSONResponse({"patToken": pat, "patTokenError": "none"})


def _error(err: PatTokenError) -> JSONResponse:
    return JSONResponse(
        {"patToken": None, "patTokenError": err.code, "patTokenErrorMessage": err.message}
    )


def _authorization_id(value: object) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise PatTokenError(
            "invalidAuthorizationId", f"'{value}' is not a valid authorization id."
        ) from None


def _owned(state: DevopsState, caller: Caller, org: Organization, raw_id: object) -> PatRecord:
    auth_id = _authorization_id(raw_id)
    record = state.pat(auth_id)
    if record is None or (record.target_org not in (None, org.id)):
        raise PatTokenError("tokenNotFound", f"No personal access token with id {auth_id}.")
    if record.user_oid != caller.object_id:
        raise PatTokenError("accessDenied", f"The token {auth_id} belongs to another user.")
    return record


def _display_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PatTokenError("displayNameRequired", "A display name is required.")
    if len(value) > 256:
        raise PatTokenError("invalidDisplayName", "The display name is longer than 256 characters.")
    return value


def _scope(state: DevopsState, caller: Caller, value: object) -> str:
    if not isinstance(value, str) or not value.split():
        raise PatTokenError("invalidScope", "At least one scope is required.")
    bad = invalid_scopes(value)
    if bad:
        raise PatTokenError("invalidScope", f"Unknown scope(s): {' '.join(bad)}.")
    policies = state.policies
    if (
        FULL_ACCESS in value.split()
        and policies.restrict_full_scope
        and not policies.is_exempt(caller.name)
    ):
        raise PatTokenError(
            "fullScopePatPolicyViolation",
            "The tenant policy restricts full-scoped personal access token creation.",
        )
    return " ".join(value.split())


def _valid_to(value: object) -> dt.datetime:
    parsed = parse_datetime(value)
    if parsed is None:
        raise PatTokenError("invalidValidTo", f"'{value}' is not a valid date-time for validTo.")
    if parsed <= now():
        raise PatTokenError("invalidValidTo", "validTo must be in the future.")
    return parsed


def _within_lifespan(
    state: DevopsState, caller: Caller, valid_to: dt.datetime, *, start: dt.datetime
) -> dt.datetime:
    policies = state.policies
    if policies.max_lifespan_days is None or policies.is_exempt(caller.name):
        return valid_to
    limit = start + dt.timedelta(days=policies.max_lifespan_days)
    if valid_to <= limit:
        return valid_to
    if policies.lifespan_mode == "refuse":
        raise PatTokenError(
            "patLifespanPolicyViolation",
            "The tenant policy limits personal access tokens to "
            f"{policies.max_lifespan_days} days.",
        )
    return limit


def _check_global(state: DevopsState, caller: Caller, all_orgs: object) -> bool:
    wanted = all_orgs is True
    policies = state.policies
    if wanted and policies.restrict_global and not policies.is_exempt(caller.name):
        raise PatTokenError(
            "globalPatPolicyViolation",
            "The tenant policy restricts global personal access token creation.",
        )
    return wanted


def create_pat(
    state: DevopsState, caller: Caller, org: Organization, body: dict[str, Any]
) -> tuple[PatRecord, str]:
    """Validate a ``PatTokenCreateRequest`` and issue the PAT (``targetAccounts`` is ignored).

    Raises:
        PatTokenError: a validation or policy failure.
    """
    policies = state.policies
    if policies.disable_pat_creation and not policies.is_exempt(caller.name):
        raise PatTokenError(
            "disablePatCreationPolicyViolation",
            f"The organization {org.name} restricts personal access token creation.",
        )
    display_name = _display_name(body.get("displayName"))
    scope = _scope(state, caller, body.get("scope"))
    issued = now()
    valid_to = _within_lifespan(state, caller, _valid_to(body.get("validTo")), start=issued)
    all_orgs = _check_global(state, caller, body.get("allOrgs"))
    return issue_pat(
        state,
        user_oid=caller.object_id,
        display_name=display_name,
        scope=scope,
        valid_from=issued,
        valid_to=valid_to,
        target_org=None if all_orgs else org.id,
    )


def issue_pat(
    state: DevopsState,
    *,
    user_oid: str,
    display_name: str,
    scope: str,
    valid_from: dt.datetime,
    valid_to: dt.datetime,
    target_org: str | None,
    revoked: bool = False,
) -> tuple[PatRecord, str]:
    """Store a new PAT and return it with its value (recorded with ``remember_secret``)."""
    from patwarden_emulator.devops.state import new_pat_value, token_hash

    value = new_pat_value(state.policies.pat_format)
    state.emu.remember_secret("pat", value)
    record = PatRecord(
        authorization_id=str(uuid.uuid4()),
        user_oid=user_oid,
        display_name=display_name,
        scope=scope,
        valid_from=valid_from,
        valid_to=sql_datetime_round(valid_to),
        target_org=target_org,
        revoked=revoked,
    )
    state.insert_pat(record, token_sha256=token_hash(value))
    return record, value


def _update(
    state: DevopsState, caller: Caller, org: Organization, body: dict[str, Any]
) -> PatRecord:
    record = _owned(state, caller, org, body.get("authorizationId"))
    if record.revoked:
        raise PatTokenError("invalidToken", "The token has been revoked and cannot be updated.")
    changes: dict[str, Any] = {}
    if body.get("displayName") is not None:
        changes["display_name"] = _display_name(body["displayName"])
    if body.get("scope") is not None:
        changes["scope"] = _scope(state, caller, body["scope"])
    if body.get("validTo") is not None:
        valid_to = _valid_to(body["validTo"])
        if record.is_expired(now()):
            raise PatTokenError(
                "expiredPatCannotBeExtended", "An expired personal access token cannot be extended."
            )
        valid_to = _within_lifespan(state, caller, valid_to, start=record.valid_from)
        changes["valid_to"] = sql_datetime_round(valid_to)
    if body.get("allOrgs") is not None:
        changes["target_org"] = None if _check_global(state, caller, body["allOrgs"]) else org.id
    updated = replace(record, **changes)
    state.update_pat(updated)
    return updated


def _list(state: DevopsState, caller: Caller, org: Organization, request: Request) -> Response:
    option = (query_param(request, "displayFilterOption") or "active").lower()
    sort = (query_param(request, "sortByOption") or "displayName").lower()
    if option not in _FILTERS or sort not in _SORTS:
        raise bad_request("displayFilterOption or sortByOption has an invalid value.")
    ascending = bool_param(request, "isSortAscending", default=True)
    top = int_param(request, "$top", default=DEFAULT_TOP)
    top = DEFAULT_TOP if top < 1 else min(top, MAX_TOP)
    start = 1
    token = query_param(request, "continuationToken")
    if token:
        parsed = parse_pat_continuation(token)
        if parsed is None:
            raise bad_request(f"The continuation token '{token}' is not valid.")
        start = parsed
    now_us = int(now().timestamp() * 1_000_000)
    direction = "" if ascending else " DESC"
    params: list[Any] = [now_us] if "?" in _FILTERS[option] else []
    order_parts = _SORTS[sort]
    params += [now_us] * sum(part.count("?") for part in order_parts)
    rows = state.list_pats(
        user_oid=caller.object_id,
        org_id=org.id,
        where=_FILTERS[option],
        order=", ".join(part + direction for part in order_parts),
        params=tuple(params),
        offset=start - 1,
        limit=top + 1,
    )
    has_more = len(rows) > top
    return JSONResponse(
        {
            "patTokens": [pat_json(record) for record in rows[:top]],
            "continuationToken": pat_continuation(start + top) if has_more else "",
        }
    )


def _handler(state: DevopsState) -> Any:
    async def tokens_pats(request: Request) -> Response:
        """GET (get/list), POST (create), PUT (update), DELETE (revoke)."""
        org = organization_of(state, request)
        manage = request.method != "GET"
        caller = pat_api_caller(state, request, org, manage=manage)
        require_api_version(request, preview=True)
        try:
            if request.method == "GET":
                auth_id = query_param(request, "authorizationId")
                if auth_id is None:
                    return _list(state, caller, org, request)
                return _result(pat_json(_owned(state, caller, org, auth_id)))
            if request.method == "DELETE":
                raw_id = query_param(request, "authorizationId")
                if raw_id is None:
                    # Required by the spec (``Pats_Revoke``, tokens/7.1/tokens.json) [INF text].
                    raise bad_request(
                        "Value cannot be null.\r\nParameter name: authorizationId",
                        "ArgumentNullException",
                    )
                record = _owned(state, caller, org, raw_id)
                state.revoke_pats([record.authorization_id])
                status = state.policies.revoke_status
                return Response(status_code=204) if status == 204 else JSONResponse({})
            body = await json_body(request)
            if not isinstance(body, dict):
                raise bad_request(
                    "The request body must be a JSON object.", "ArgumentNullException"
                )
            if request.method == "POST":
                record, value = create_pat(state, caller, org, body)
                return _result(pat_json(record, token=value))
            return _result(pat_json(_update(state, caller, org, body)))
        except PatTokenError as err:
            return _error(err)

    return tokens_pats


def routes(state: DevopsState) -> list[BaseRoute]:
    """The PAT Lifecycle API route."""
    return [
        CaseInsensitiveRoute(
            "/vssps/{org}/_apis/tokens/pats",
            guarded(_handler(state)),
            methods=["GET", "POST", "PUT", "DELETE"],
        )
    ]
