"""Entra admin endpoints under ``/_admin`` (JSON): users, device codes, sessions, federation.

See ``docs/emulator/entra.md`` for each endpoint's body and effect.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from patwarden_emulator.context import Emulator
from patwarden_emulator.directory import User
from patwarden_emulator.entra import conditional_access
from patwarden_emulator.entra import federation as entra_federation
from patwarden_emulator.entra.device import DeviceCode
from patwarden_emulator.entra.state import entra_state

Handler = Callable[[Request], Awaitable[Response]]


class AdminError(Exception):
    """An admin request that cannot be carried out (rendered as ``{"error", "message"}``)."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message


def user_json(user: User) -> dict[str, Any]:
    """The admin view of a user (no password)."""
    return {
        "username": user.upn,
        "object_id": user.oid,
        "display_name": user.display_name,
        "mfa_required": user.mfa_required,
        "enabled": user.enabled,
        "removed": user.removed,
        "org_admin": user.org_admin,
        "descriptor": user.descriptor,
    }


def device_code_json(code: DeviceCode) -> dict[str, Any]:
    """The admin view of a device-code request (no device code)."""
    return {
        "user_code": code.user_code,
        "client_id": code.client_id,
        "scopes": code.scope.split(),
        "status": code.status,
        "created_at": code.created_at,
        "expires_at": code.expires_at,
    }


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as err:
        raise AdminError(400, "bad_request", "The body is not valid JSON.") from err
    if not isinstance(body, dict):
        raise AdminError(400, "bad_request", "The body must be a JSON object.")
    return body


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise AdminError(400, "bad_request", f"The body needs a non-empty string '{key}'.")
    return value


def _flag(body: dict[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise AdminError(400, "bad_request", f"'{key}' must be true or false.")
    return value


def _user(emu: Emulator, username: str) -> User:
    user = emu.directory.user_by_upn(username)
    if user is None:
        raise AdminError(404, "user_not_found", f"No user '{username}' in the emulated tenant.")
    return user


def _guarded(handler: Handler) -> Handler:
    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except AdminError as err:
            return JSONResponse(
                {"error": err.error, "message": err.message}, status_code=err.status
            )

    return run


def _user_routes(emu: Emulator) -> list[BaseRoute]:
    async def list_users(request: Request) -> Response:
        return JSONResponse({"value": [user_json(u) for u in emu.directory.users(limit=10_000)]})

    async def add_user(request: Request) -> Response:
        body = await _body(request)
        username = _text(body, "username")
        if emu.directory.user_by_upn(username) is not None:
            raise AdminError(409, "user_exists", f"User '{username}' already exists.")
        password = body.get("password") or secrets.token_urlsafe(18)
        user = emu.directory.add_user(
            upn=username,
            display_name=str(body.get("display_name") or username),
            password=str(password),
            mfa_required=_flag(body, "mfa_required") is not False,
            org_admin=bool(_flag(body, "org_admin")),
        )
        document = user_json(user)
        if "password" not in body:
            document["password"] = password  # the emulator's own throwaway password
        return JSONResponse(document, status_code=201)

    async def patch_user(request: Request) -> Response:
        user = _user(emu, request.path_params["username"])
        body = await _body(request)
        emu.directory.set_user_flags(
            user.oid,
            enabled=_flag(body, "enabled"),
            removed=_flag(body, "removed"),
            mfa_required=_flag(body, "mfa_required"),
            org_admin=_flag(body, "org_admin"),
        )
        return JSONResponse(user_json(_user(emu, user.upn)))

    async def require_mfa(request: Request) -> Response:
        user = _user(emu, _text(await _body(request), "username"))
        emu.directory.set_user_flags(user.oid, mfa_required=True)
        entra_state(emu).sessions.require_mfa_reauth(user.oid)
        return JSONResponse(user_json(_user(emu, user.upn)))

    return [
        Route("/_admin/users", _guarded(list_users), methods=["GET"]),
        Route("/_admin/users", _guarded(add_user), methods=["POST"]),
        Route("/_admin/users/require-mfa", _guarded(require_mfa), methods=["POST"]),
        Route("/_admin/users/{username}", _guarded(patch_user), methods=["PATCH"]),
    ]


def _device_code_routes(emu: Emulator) -> list[BaseRoute]:
    codes = entra_state(emu).device_codes

    async def list_codes(request: Request) -> Response:
        return JSONResponse({"value": [device_code_json(c) for c in codes.pending()]})

    def _pending(user_code: str) -> DeviceCode:
        record = codes.by_user_code(user_code)
        if record is None:
            raise AdminError(404, "device_code_not_found", f"No device code '{user_code}'.")
        if record.status != "pending":
            raise AdminError(
                409, "device_code_not_pending", f"Device code '{user_code}' is {record.status}."
            )
        return record

    async def approve(request: Request) -> Response:
        body = await _body(request)
        user_code = _text(body, "user_code")
        _pending(user_code)
        username = body.get("username") or emu.identities.rotator.upn
        user = _user(emu, str(username))
        decided = codes.decide(user_code=user_code, approve=True, user_oid=user.oid)
        if decided is None:
            raise AdminError(409, "device_code_not_pending", f"Device code '{user_code}' changed.")
        return JSONResponse({**device_code_json(decided), "username": user.upn})

    async def deny(request: Request) -> Response:
        user_code = _text(await _body(request), "user_code")
        _pending(user_code)
        decided = codes.decide(user_code=user_code, approve=False, user_oid=None)
        if decided is None:
            raise AdminError(409, "device_code_not_pending", f"Device code '{user_code}' changed.")
        return JSONResponse(device_code_json(decided))

    async def expire(request: Request) -> Response:
        user_code = _text(await _body(request), "user_code")
        if not codes.expire(user_code):
            raise AdminError(404, "device_code_not_found", f"No device code '{user_code}'.")
        record = codes.by_user_code(user_code)
        assert record is not None
        return JSONResponse(device_code_json(record))

    return [
        Route("/_admin/device-codes", _guarded(list_codes), methods=["GET"]),
        Route("/_admin/device-codes/approve", _guarded(approve), methods=["POST"]),
        Route("/_admin/device-codes/deny", _guarded(deny), methods=["POST"]),
        Route("/_admin/device-codes/expire", _guarded(expire), methods=["POST"]),
    ]


def _session_routes(emu: Emulator) -> list[BaseRoute]:
    sessions = entra_state(emu).sessions

    async def revoke(request: Request) -> Response:
        user = _user(emu, _text(await _body(request), "username"))
        return JSONResponse({"username": user.upn, "revoked": sessions.revoke_user(user.oid)})

    async def expire(request: Request) -> Response:
        user = _user(emu, _text(await _body(request), "username"))
        return JSONResponse({"username": user.upn, "expired": sessions.expire_user(user.oid)})

    async def sign_in_frequency(request: Request) -> Response:
        body = await _body(request)
        user = _user(emu, _text(body, "username"))
        unit = "minutes" if "minutes" in body else "seconds"
        amount = body.get(unit)
        if amount is not None and (not isinstance(amount, int) or amount < 0):
            raise AdminError(
                400, "bad_request", f"'{unit}' must be a non-negative integer or null."
            )
        seconds = None if amount is None else amount * (60 if unit == "minutes" else 1)
        sessions.set_sign_in_frequency(user.oid, seconds)
        return JSONResponse({"username": user.upn, "seconds": seconds})

    async def reset_password(request: Request) -> Response:
        body = await _body(request)
        user = _user(emu, _text(body, "username"))
        password = str(body.get("password") or secrets.token_urlsafe(18))
        emu.directory.set_password(user.oid, password)
        revoked = sessions.revoke_user(user.oid)  # Entra revokes refresh tokens (AADSTS50173)
        document: dict[str, Any] = {"username": user.upn, "revoked": revoked}
        if "password" not in body:
            document["password"] = password  # the emulator's own throwaway password
        return JSONResponse(document)

    async def cae_event(request: Request) -> Response:
        user = _user(emu, _text(await _body(request), "username"))
        sessions.cae_events[user.oid] = time.time()
        return JSONResponse({"username": user.upn, "tokens_valid_from": time.time()})

    async def policies(request: Request) -> Response:
        if request.method == "PUT":
            try:
                conditional_access.update(emu, await _body(request))
            except ValueError as err:
                raise AdminError(400, "bad_request", str(err)) from None
        return JSONResponse(conditional_access.current(emu).to_json())

    return [
        Route("/_admin/refresh-tokens/revoke", _guarded(revoke), methods=["POST"]),
        Route("/_admin/refresh-tokens/expire", _guarded(expire), methods=["POST"]),
        Route("/_admin/sign-in-frequency", _guarded(sign_in_frequency), methods=["PUT"]),
        Route("/_admin/users/reset-password", _guarded(reset_password), methods=["POST"]),
        Route("/_admin/cae-events", _guarded(cae_event), methods=["POST"]),
        Route("/_admin/conditional-access", _guarded(policies), methods=["GET", "PUT"]),
    ]


def _federation_routes(emu: Emulator) -> list[BaseRoute]:
    async def add_credential(request: Request) -> Response:
        body = await _body(request)
        client_id = _text(body, "client_id")
        if emu.directory.app(client_id) is None:
            raise AdminError(404, "app_not_found", f"No app with client id '{client_id}'.")
        issuer = str(body.get("issuer") or entra_federation.external_issuer(emu))
        subject = _text(body, "subject")
        audience = str(body.get("audience") or entra_federation.DEFAULT_AUDIENCE)
        credential_id = entra_federation.add_federated_credential(
            emu, client_id=client_id, issuer=issuer, subject=subject, audience=audience
        )
        document = {
            "id": credential_id,
            "client_id": client_id,
            "issuer": issuer,
            "subject": subject,
            "audience": audience,
        }
        return JSONResponse(document, status_code=201)

    async def mint(request: Request) -> Response:
        body = await _body(request)
        audience = str(body.get("audience") or entra_federation.DEFAULT_AUDIENCE)
        token = entra_federation.mint_external_token(
            emu, subject=_text(body, "subject"), audience=audience
        )
        return JSONResponse({"token": token, "issuer": entra_federation.external_issuer(emu)})

    return [
        Route("/_admin/federated-credentials", _guarded(add_credential), methods=["POST"]),
        Route("/_admin/federated-tokens", _guarded(mint), methods=["POST"]),
    ]


def routes(emu: Emulator) -> list[BaseRoute]:
    """Every Entra admin route."""
    return [
        *_user_routes(emu),
        *_device_code_routes(emu),
        *_session_routes(emu),
        *_federation_routes(emu),
    ]
