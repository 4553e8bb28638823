"""The emulated Microsoft Entra ID: discovery, JWKS, the v2 token and device-code endpoints.

Served at ``{authority_host}/{tenant}/…`` where ``tenant`` is the tenant id or the aliases
``organizations``/``common`` (contract §4). Grants: client credentials (secret, certificate or
federated assertion), device code, refresh token, ROPC and authorization code with PKCE
(:mod:`patwarden_emulator.entra.authorize`, which also serves the browser sign-in page). Errors
have Entra's shape (:mod:`patwarden_emulator.entra.errors`); Conditional Access switches bite in
:mod:`patwarden_emulator.entra.conditional_access`. Admin endpoints live in
:mod:`patwarden_emulator.entra.admin`; the device-code sign-in page in
:mod:`patwarden_emulator.entra.pages`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from patwarden_emulator.auth import note_identity
from patwarden_emulator.context import Emulator
from patwarden_emulator.directory import User
from patwarden_emulator.entra import admin as entra_admin
from patwarden_emulator.entra import authorize as entra_authorize
from patwarden_emulator.entra import conditional_access
from patwarden_emulator.entra import federation as entra_federation
from patwarden_emulator.entra import pages as entra_pages
from patwarden_emulator.entra.clients import ClientAuth, authenticate_client
from patwarden_emulator.entra.device import DEVICE_CODE_LIFETIME, POLL_INTERVAL
from patwarden_emulator.entra.discovery import (
    Form,
    openid_configuration,
    read_form,
    tenant_segment,
    token_endpoints,
)
from patwarden_emulator.entra.errors import (
    NO_CACHE_HEADERS,
    AadError,
    error_response,
    invalid_grant,
    mfa_required,
    missing_parameter,
    user_disabled,
    user_not_found,
)
from patwarden_emulator.entra.scopes import delegated_grant, parse_scopes, require_default_only
from patwarden_emulator.entra.state import entra_state, reset_state
from patwarden_emulator.entra.tokens import UserGrant, app_token_response, user_token_response

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
Grant = Callable[[Emulator, Form, ClientAuth], tuple[dict[str, Any], str]]


# grants -------------------------------------------------------------------------------------
def _active_user(emu: Emulator, user: User | None, name: str) -> User:
    if user is None or user.removed:
        raise user_not_found(name, emu.tenant_id)
    if not user.enabled:
        raise user_disabled(user.upn)
    return user


def _client_credentials(
    emu: Emulator, form: Form, client: ClientAuth
) -> tuple[dict[str, Any], str]:
    if client.method == "none":
        raise AadError(
            7000218,
            "invalid_client",
            "The request body must contain the following parameter: 'client_assertion' or "
            "'client_secret'.",
            status=401,
        )
    request = parse_scopes(form.get("scope"), tenant_id=emu.tenant_id)
    require_default_only(request)
    body = app_token_response(
        emu, app=client.app, audience=request.audience, appidacr=client.appidacr
    )
    return body, client.app.display_name


def _device_code(emu: Emulator, form: Form, client: ClientAuth) -> tuple[dict[str, Any], str]:
    device_code = form.get("device_code") or form.get("code")
    if not device_code:
        raise missing_parameter("device_code")
    redemption = entra_state(emu).device_codes.redeem(
        device_code=device_code, client_id=client.app.client_id
    )
    user = _active_user(emu, emu.directory.user_by_oid(redemption.user_oid), redemption.user_oid)
    conditional_access.check_token(emu, user, flow=conditional_access.DEVICE_CODE_FLOW)
    request = parse_scopes(redemption.scope, tenant_id=emu.tenant_id)
    grant = UserGrant(
        user=user,
        app=client.app,
        request=request,
        permissions=delegated_grant(request, app=client.app),
        auth_time=redemption.auth_time,
        mfa=True,  # the person signed in interactively and satisfied MFA there
        with_refresh_token=request.wants_refresh_token,
        client_info=form.get("client_info") == "1",
        nonce=form.get("nonce"),
        flow=conditional_access.DEVICE_CODE_FLOW,
        cae=conditional_access.declares_cae(form.get("claims")),
    )
    return user_token_response(emu, entra_state(emu).sessions, grant), user.upn


def _refresh_token(emu: Emulator, form: Form, client: ClientAuth) -> tuple[dict[str, Any], str]:
    token = form.get("refresh_token")
    if not token:
        raise missing_parameter("refresh_token")
    sessions = entra_state(emu).sessions
    found = sessions.find(token)
    if found is None or found.client_id != client.app.client_id:
        raise invalid_grant(9002313, "Invalid request. Request is malformed or invalid.")
    issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(found.issued_at))
    if found.revoked:
        valid_from = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(found.revoked_at or 0))
        raise invalid_grant(
            50173,
            "The provided grant has expired due to it being revoked, a fresh auth token is "
            "needed. The user might have changed or reset their password. The grant was issued "
            f"on '{issued}' and the TokensValidFrom date (before which tokens are not valid) for "
            f"this user is '{valid_from}'.",
        )
    if found.expired:
        raise invalid_grant(
            700082,
            f"The refresh token has expired due to inactivity. The token was issued on {issued} "
            "and was inactive for 90.00:00:00.",
        )
    user = _active_user(emu, emu.directory.user_by_oid(found.user_oid), found.user_oid)
    conditional_access.check_token(emu, user, flow=found.flow)
    request = parse_scopes(form.get("scope") or found.scopes, tenant_id=emu.tenant_id)
    policy = sessions.policy(user.oid)
    frequency = policy.sign_in_frequency_seconds
    if frequency is not None and time.time() - found.auth_time > frequency:
        signed_in = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(found.auth_time))
        raise invalid_grant(
            70043,
            "The refresh token has expired or is invalid due to sign-in frequency checks by "
            f"conditional access. The token was issued on {signed_in} and the maximum allowed "
            f"lifetime for this request is {frequency}.",
        )
    reauth_after = policy.mfa_reauth_after
    if (reauth_after is not None and found.auth_time < reauth_after) or (
        user.mfa_required and not found.mfa
    ):
        raise mfa_required(request.audience, error="interaction_required")
    grant = UserGrant(
        user=user,
        app=client.app,
        request=request,
        permissions=delegated_grant(request, app=client.app),
        auth_time=found.auth_time,
        mfa=found.mfa,
        with_refresh_token=True,  # every redemption returns a new refresh token (§4.5)
        client_info=form.get("client_info") == "1",
        flow=found.flow,
        cae=conditional_access.declares_cae(form.get("claims")),
    )
    return user_token_response(emu, sessions, grant), user.upn


def _password(emu: Emulator, form: Form, client: ClientAuth) -> tuple[dict[str, Any], str]:
    username, password = form.get("username"), form.get("password")
    if not username:
        raise missing_parameter("username")
    if not password:
        raise missing_parameter("password")
    request = parse_scopes(form.get("scope"), tenant_id=emu.tenant_id)
    user = emu.directory.user_by_upn(username)
    if user is None or user.removed:
        raise user_not_found(username, emu.tenant_id)
    if not user.check_password(password):
        raise invalid_grant(
            50126, "Error validating credentials due to invalid username or password."
        )
    user = _active_user(emu, user, username)
    if user.mfa_required:
        raise mfa_required(request.audience, error="invalid_grant")
    grant = UserGrant(
        user=user,
        app=client.app,
        request=request,
        permissions=delegated_grant(request, app=client.app),
        auth_time=time.time(),
        mfa=False,
        with_refresh_token=request.wants_refresh_token,
        client_info=form.get("client_info") == "1",
    )
    return user_token_response(emu, entra_state(emu).sessions, grant), user.upn


GRANTS: dict[str, Grant] = {
    "client_credentials": _client_credentials,
    DEVICE_CODE_GRANT: _device_code,
    "refresh_token": _refresh_token,
    "password": _password,
    "authorization_code": entra_authorize.authorization_code_grant,
}


# endpoints ----------------------------------------------------------------------------------
def routes(emu: Emulator) -> list[BaseRoute]:
    """The Entra routes (the admin module mounts :func:`admin_routes` separately)."""

    def failed(request: Request, err: AadError) -> Response:
        return error_response(err, request=request, base_url=emu.base_url)

    async def discovery(request: Request) -> Response:
        try:
            segment = tenant_segment(emu, request.path_params["tenant"])
        except AadError as err:
            return failed(request, err)
        return JSONResponse(openid_configuration(emu, segment))

    async def keys(request: Request) -> Response:
        try:
            tenant_segment(emu, request.path_params["tenant"])
        except AadError as err:
            return failed(request, err)
        return JSONResponse(emu.keys.jwks())

    async def token(request: Request) -> Response:
        try:
            segment = tenant_segment(emu, request.path_params["tenant"])
            form = await read_form(request)
            grant_type = form.get("grant_type")
            if not grant_type:
                raise missing_parameter("grant_type")
            grant = GRANTS.get(grant_type)
            if grant is None:
                raise AadError(
                    70003,
                    "unsupported_grant_type",
                    f"The app requested an unsupported grant type '{grant_type}'.",
                )
            client = authenticate_client(
                emu,
                form=form,
                authorization=request.headers.get("authorization"),
                token_endpoints=token_endpoints(emu, segment),
            )
            note_identity(request, client.app.display_name)
            body, identity = grant(emu, form, client)
        except AadError as err:
            return failed(request, err)
        note_identity(request, identity)
        return JSONResponse(body, headers=NO_CACHE_HEADERS)

    async def devicecode(request: Request) -> Response:
        try:
            tenant_segment(emu, request.path_params["tenant"])
            form = await read_form(request)
            client_id = form.get("client_id")
            if not client_id:
                raise missing_parameter("client_id")
            if emu.directory.app(client_id) is None:
                raise AadError(
                    700016,
                    "unauthorized_client",
                    f"Application with identifier '{client_id}' was not found in the directory "
                    f"'{emu.tenant_id}'.",
                )
            scope = form.get("scope", "")
            parse_scopes(scope, tenant_id=emu.tenant_id)
            conditional_access.check_device_code_request(emu)
        except AadError as err:
            return failed(request, err)
        codes = entra_state(emu).device_codes
        device_code, record = codes.create(client_id=client_id, scope=scope)
        emu.remember_secret("device_code", device_code)
        if emu.auto_approve_device_codes:
            codes.decide(
                user_code=record.user_code, approve=True, user_oid=emu.identities.rotator.oid
            )
        uri = f"{emu.base_url}/devicelogin"
        return JSONResponse(
            {
                "user_code": record.user_code,
                "device_code": device_code,
                "verification_uri": uri,
                "expires_in": DEVICE_CODE_LIFETIME,
                "interval": POLL_INTERVAL,
                "message": f"To sign in, use a web browser to open the page {uri} and enter the "
                f"code {record.user_code} to authenticate.",
            },
            headers=NO_CACHE_HEADERS,
        )

    async def user_realm(request: Request) -> Response:
        return JSONResponse(
            {
                "ver": "1.0",
                "account_type": "Managed",
                "domain_name": request.path_params["username"].rpartition("@")[2],
                "cloud_instance_name": "microsoftonline.com",
                "cloud_audience_urn": "urn:federation:MicrosoftOnline",
            }
        )

    async def external_discovery(request: Request) -> Response:
        return JSONResponse(entra_federation.oidc_configuration(emu))

    async def external_keys(request: Request) -> Response:
        return JSONResponse(emu.keys.jwks())

    return [
        Route("/{tenant}/v2.0/.well-known/openid-configuration", discovery, methods=["GET"]),
        Route("/{tenant}/discovery/v2.0/keys", keys, methods=["GET"]),
        Route("/{tenant}/discovery/keys", keys, methods=["GET"]),
        Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
        Route("/{tenant}/oauth2/v2.0/devicecode", devicecode, methods=["POST"]),
        Route("/common/userrealm/{username}", user_realm, methods=["GET"]),
        Route("/oidc/.well-known/openid-configuration", external_discovery, methods=["GET"]),
        Route("/oidc/keys", external_keys, methods=["GET"]),
        *entra_pages.routes(emu),
        *entra_authorize.routes(emu),
    ]


def admin_routes(emu: Emulator) -> list[BaseRoute]:
    """The Entra admin endpoints (users, device codes, refresh tokens, policies, federation)."""
    return entra_admin.routes(emu)


def reset(emu: Emulator) -> None:
    """Back to freshly seeded: no sessions, device codes, policies or federated credentials."""
    reset_state(emu)
