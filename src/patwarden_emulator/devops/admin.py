"""Admin endpoints of the emulated Azure DevOps (all under ``/_admin``, JSON in and out).

``GET|PUT /_admin/policies``, ``POST /_admin/organizations``, ``POST /_admin/projects``,
``POST|GET /_admin/pats``, ``POST /_admin/seed``, ``POST /_admin/variable-groups``,
``GET /_admin/variable-groups/{id}/secrets``, ``POST /_admin/service-endpoints`` and
``GET /_admin/service-endpoints/{id}/secrets``. See ``docs/emulator/devops.md``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import secrets
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from patwarden_emulator.devops.identities import admin_ref
from patwarden_emulator.devops.pats import issue_pat, pat_json
from patwarden_emulator.devops.policies import policies_from_json
from patwarden_emulator.devops.service_endpoints import ServiceEndpoints
from patwarden_emulator.devops.state import (
    DevopsState,
    Organization,
    PatRecord,
    now,
    pat_row,
)
from patwarden_emulator.devops.variable_groups import VariableGroups, normalise_variables
from patwarden_emulator.devops.wire import VssError, parse_datetime
from patwarden_emulator.directory import _descriptor

_SEED_SCOPES = (
    "vso.code",
    "vso.code_write",
    "vso.packaging",
    "vso.build_execute",
    "vso.work_write",
    "vso.code vso.packaging_write",
    "vso.variablegroups_manage",
    "app_token",
)
_SEED_LIFETIMES_DAYS = (7, 30, 90, 180, 365)
_DAY = dt.timedelta(days=1)


class AdminInputError(ValueError):
    """A bad admin request; the message says which field and why."""


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise AdminInputError("the body is not JSON") from None
    if not isinstance(body, dict):
        raise AdminInputError("the body must be a JSON object")
    return body


def _org(state: DevopsState, body: dict[str, Any]) -> Organization:
    name = str(body.get("organization") or state.emu.organization)
    org = state.organization(name)
    if org is None:
        raise AdminInputError(f"organization {name!r} does not exist")
    return org


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise AdminInputError(f"{key!r} is required (a non-empty string)")
    return value


def seed_population(state: DevopsState, *, users: int, pats_per_user: int, seed: int) -> int:
    """Insert *users* directory users with *pats_per_user* PATs each, in one transaction.

    Scopes, lifetimes (some already expired), global/org binding, revocation and a few disabled
    or removed owners vary deterministically with *seed*. Returns the number of PATs inserted.
    """
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not cryptography
    current = now()
    org_id = state.emu.organization_id
    count = 0
    with state.store.transaction():
        for index in range(users):
            oid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            roll = rng.random()
            state.store.execute(
                "INSERT OR IGNORE INTO users (oid, upn, display_name, password_sha256,"
                " mfa_required, enabled, removed, descriptor) VALUES (?, ?, ?, ?, 1, ?, ?, ?)",
                (
                    oid,
                    f"seed{seed}-{index:05d}@contoso.example",
                    f"Seed User {seed}-{index:05d}",
                    hashlib.sha256(secrets.token_bytes(16)).hexdigest(),
                    int(roll >= 0.03),
                    int(0.03 <= roll < 0.05),
                    _descriptor(oid),
                ),
            )
            for number in range(pats_per_user):
                issued = current - rng.uniform(0, 300) * _DAY
                record = PatRecord(
                    authorization_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    user_oid=oid,
                    display_name=f"seed-token-{number}",
                    scope=rng.choice(_SEED_SCOPES),
                    valid_from=issued,
                    valid_to=issued + rng.choice(_SEED_LIFETIMES_DAYS) * _DAY,
                    target_org=None if rng.random() < 0.1 else org_id,
                    revoked=rng.random() < 0.05,
                )
                token_sha = hashlib.sha256(secrets.token_bytes(32)).hexdigest()
                state.store.execute(
                    "INSERT INTO devops_pats (authorization_id, user_oid, display_name, scope,"
                    " valid_from_us, valid_to_us, target_org, revoked, token_sha256)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    pat_row(record, token_sha256=token_sha),
                )
                count += 1
    return count


def _admin_pat(state: DevopsState, body: dict[str, Any]) -> dict[str, Any]:
    user = state.emu.directory.user_by_upn(_text(body, "username"))
    if user is None:
        raise AdminInputError(f"user {body['username']!r} does not exist")
    valid_from = parse_datetime(body["validFrom"]) if body.get("validFrom") else now()
    valid_to = parse_datetime(body.get("validTo"))
    if valid_from is None or valid_to is None:
        raise AdminInputError("'validTo' (and 'validFrom' when given) must be ISO-8601 date-times")
    record, value = issue_pat(
        state,
        user_oid=user.oid,
        display_name=_text(body, "displayName"),
        scope=_text(body, "scope"),
        valid_from=valid_from,
        valid_to=valid_to,
        target_org=None if body.get("allOrgs") is True else _org(state, body).id,
        revoked=body.get("revoked") is True,
    )
    return {
        "authorizationId": record.authorization_id,
        "token": value,
        "patToken": pat_json(record),
    }


def _pat_metadata(state: DevopsState, username: str) -> list[dict[str, Any]]:
    user = state.emu.directory.user_by_upn(username)
    if user is None:
        raise AdminInputError(f"user {username!r} does not exist")
    records = state.list_pats(user_oid=user.oid, org_id=None, limit=1_000_000)
    current = now()
    return [
        {
            **pat_json(record),
            "username": user.upn,
            "revoked": record.revoked,
            "expired": record.is_expired(current),
        }
        for record in records
    ]


def routes(
    state: DevopsState, groups: VariableGroups, endpoints: ServiceEndpoints
) -> list[BaseRoute]:
    """The Azure DevOps admin routes."""

    def handler(work: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                response: Response = await work(request)
                return response
            except AdminInputError as err:
                return _error(str(err))
            except VssError as err:
                return _error(err.message, err.status)

        return endpoint

    async def policies(request: Request) -> Response:
        if request.method == "PUT":
            try:
                state.set_policies(policies_from_json(state.policies, await _body(request)))
            except ValueError as err:
                raise AdminInputError(str(err)) from None
        return JSONResponse(state.policies.to_json())

    async def organizations(request: Request) -> Response:
        org = state.add_organization(_text(await _body(request), "name"))
        return JSONResponse({"name": org.name, "id": org.id}, status_code=201)

    async def projects(request: Request) -> Response:
        body = await _body(request)
        project = state.add_project(_org(state, body).id, _text(body, "name"))
        return JSONResponse(project, status_code=201)

    async def pats(request: Request) -> Response:
        if request.method == "GET":
            username = request.query_params.get("username")
            if not username:
                raise AdminInputError("query parameter 'username' is required")
            return JSONResponse({"value": _pat_metadata(state, username)})
        return JSONResponse(_admin_pat(state, await _body(request)), status_code=201)

    async def seed(request: Request) -> Response:
        body = await _body(request)
        numbers = [body.get("users"), body.get("pats_per_user", 5), body.get("seed", 0)]
        if not all(isinstance(v, int) and v >= 0 for v in numbers):
            raise AdminInputError("'users', 'pats_per_user' and 'seed' must be integers >= 0")
        users, per_user, seed_value = (int(str(v)) for v in numbers)
        started = time.perf_counter()
        count = seed_population(state, users=users, pats_per_user=per_user, seed=seed_value)
        elapsed = round(time.perf_counter() - started, 3)
        return JSONResponse({"users": users, "pats": count, "seconds": elapsed}, status_code=201)

    async def variable_groups(request: Request) -> Response:
        body = await _body(request)
        org = _org(state, body)
        project = state.project(org.id, _text(body, "project"))
        if project is None:
            raise AdminInputError(f"project {body['project']!r} does not exist")
        variables = normalise_variables(body.get("variables") or {}, previous={})
        group_id = groups.create(
            org=org, project=project, name=_text(body, "name"), variables=variables, by=admin_ref()
        )
        return JSONResponse(groups.to_json(groups.row(org, group_id)), status_code=201)

    async def service_endpoints(request: Request) -> Response:
        body = await _body(request)
        org = _org(state, body)
        project = state.project(org.id, _text(body, "project"))
        if project is None:
            raise AdminInputError(f"project {body['project']!r} does not exist")
        _text(body, "name")
        if not isinstance(body.get("parameters") or {}, dict):
            raise AdminInputError("'parameters' must be an object")
        endpoint_id = endpoints.create(org=org, project=project, spec=body, by=admin_ref())
        return JSONResponse(endpoints.to_json(endpoints.row(org, endpoint_id)), status_code=201)

    async def group_secrets(request: Request) -> Response:
        found = groups.secrets(int(request.path_params["group_id"]))
        if found is None:
            return _error("no such variable group", 404)
        return JSONResponse({"variables": found})

    async def endpoint_secrets(request: Request) -> Response:
        found = endpoints.secrets(str(request.path_params["endpoint_id"]))
        if found is None:
            return _error("no such service endpoint", 404)
        return JSONResponse({"parameters": found})

    return [
        Route("/_admin/policies", handler(policies), methods=["GET", "PUT"]),
        Route("/_admin/organizations", handler(organizations), methods=["POST"]),
        Route("/_admin/projects", handler(projects), methods=["POST"]),
        Route("/_admin/pats", handler(pats), methods=["GET", "POST"]),
        Route("/_admin/seed", handler(seed), methods=["POST"]),
        Route("/_admin/variable-groups", handler(variable_groups), methods=["POST"]),
        Route(
            "/_admin/variable-groups/{group_id:int}/secrets",
            handler(group_secrets),
            methods=["GET"],
        ),
        Route("/_admin/service-endpoints", handler(service_endpoints), methods=["POST"]),
        Route(
            "/_admin/service-endpoints/{endpoint_id}/secrets",
            handler(endpoint_secrets),
            methods=["GET"],
        ),
    ]
