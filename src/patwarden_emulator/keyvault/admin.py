"""Admin endpoints of the emulated vault: role assignments, and a test-only view of stored secrets.

``PUT /_admin/key-vault/grants {"principal", "role"}`` assigns a role (the principal is a UPN, a
client id or an object id); ``DELETE`` with the same body (``role`` optional) removes it;
``GET`` lists the assignments. ``GET /_admin/key-vault/secrets/{name}`` returns every version of a
secret with its value, so tests can check what was written without holding a vault role.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from patwarden_emulator.context import Emulator
from patwarden_emulator.keyvault.store import ROLES, SECRETS_OFFICER, Grant, SecretStore

_RUNTIME_KEY = "keyvault"
_SEEDED_META = "keyvault_default_grants_seeded"


def default_grants(emu: Emulator) -> list[Grant]:
    """The assignments of a freshly seeded vault: the service principal is Secrets Officer."""
    return [Grant(principal=emu.identities.service_principal.client_id, role=SECRETS_OFFICER)]


def vault_store(emu: Emulator) -> SecretStore:
    """The emulator's secret store (created, and given its default grants, on first use)."""
    store = emu.runtime.get(_RUNTIME_KEY)
    if isinstance(store, SecretStore):
        return store
    store = SecretStore(emu.store)
    if emu.store.get_meta(_SEEDED_META) is None:
        for grant in default_grants(emu):
            store.grant(principal=grant.principal, role=grant.role)
        emu.store.set_meta(_SEEDED_META, "1")
    emu.runtime[_RUNTIME_KEY] = store
    return store


def _bad_request(message: str) -> JSONResponse:
    return JSONResponse({"error": "bad_request", "message": message}, status_code=400)


async def _grant_body(request: Request, *, role_required: bool) -> dict[str, Any] | JSONResponse:
    try:
        body = await request.json() if await request.body() else dict(request.query_params)
    except ValueError:
        return _bad_request("The body is not valid JSON.")
    if not isinstance(body, dict) or not isinstance(body.get("principal"), str):
        return _bad_request('Expected {"principal": "<upn, client id or object id>", "role": ...}.')
    role = body.get("role")
    if (role_required or role is not None) and role not in ROLES:
        return _bad_request(f"'role' must be one of: {', '.join(ROLES)}.")
    return body


def admin_routes(emu: Emulator) -> list[BaseRoute]:
    """``/_admin/key-vault/...``: role assignments and a read-only view of stored secrets."""
    vault = vault_store(emu)

    def listing() -> JSONResponse:
        grants = [{"principal": g.principal, "role": g.role} for g in vault.grants()]
        return JSONResponse({"grants": grants})

    async def grants(request: Request) -> Response:
        if request.method == "GET":
            return listing()
        body = await _grant_body(request, role_required=request.method == "PUT")
        if isinstance(body, JSONResponse):
            return body
        if request.method == "PUT":
            vault.grant(principal=body["principal"], role=body["role"])
        else:
            removed = vault.revoke(principal=body["principal"], role=body.get("role"))
            if not removed:
                return JSONResponse(
                    {"error": "not_found", "message": "No such role assignment."}, status_code=404
                )
        return listing()

    async def secret(request: Request) -> Response:
        name = request.path_params["name"]
        versions = vault.versions(name=name, offset=0, limit=1_000_000)
        if not versions:
            return JSONResponse(
                {"error": "not_found", "message": f"No live secret named {name}."}, status_code=404
            )
        return JSONResponse(
            {
                "name": versions[0].name,
                "versions": [
                    {
                        "version": v.version,
                        "value": v.value,
                        "contentType": v.content_type,
                        "tags": None if v.tags is None else dict(v.tags),
                        "enabled": v.enabled,
                        "nbf": v.not_before,
                        "exp": v.expires,
                        "created": v.created,
                        "updated": v.updated,
                    }
                    for v in versions
                ],
            }
        )

    return [
        Route("/_admin/key-vault/grants", grants, methods=["GET", "PUT", "DELETE"]),
        Route("/_admin/key-vault/secrets/{name}", secret, methods=["GET"]),
    ]
