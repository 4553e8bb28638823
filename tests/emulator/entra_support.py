"""Helpers shared by the Entra emulator tests (real clients against the real emulator process)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import msal
import requests

from tests.conftest import RunningEmulator

ADO = "499b84ac-1321-427f-aa17-267ca6975798"
ADO_PATS = [f"{ADO}/vso.pats", f"{ADO}/vso.pats_manage"]
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def claims(token: str) -> dict[str, Any]:
    """Decode a JWT without verifying it (the emulator's own tests check what it issued)."""
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def tenant_url(emulator: RunningEmulator, tenant: str | None = None) -> str:
    return f"{emulator['authority_host']}/{tenant or emulator['tenant_id']}"


def post_token(emulator: RunningEmulator, form: dict[str, str], **kwargs: Any) -> httpx.Response:
    """POST the v2 token endpoint with a form body."""
    with emulator.http() as client:
        return client.post(f"{tenant_url(emulator)}/oauth2/v2.0/token", data=form, **kwargs)


def start_device_code(emulator: RunningEmulator, *, scope: str | None = None) -> dict[str, Any]:
    """Begin a device flow for the public client over raw HTTP."""
    with emulator.http() as client:
        response = client.post(
            f"{tenant_url(emulator)}/oauth2/v2.0/devicecode",
            data={
                "client_id": public_client_id(emulator),
                "scope": scope or " ".join([*ADO_PATS, "offline_access", "openid", "profile"]),
            },
        )
    assert response.status_code == 200, response.text
    flow: dict[str, Any] = response.json()
    return flow


def poll(emulator: RunningEmulator, device_code: str) -> httpx.Response:
    """One device-code poll of the token endpoint."""
    return post_token(
        emulator,
        {
            "grant_type": DEVICE_CODE_GRANT,
            "client_id": public_client_id(emulator),
            "device_code": device_code,
            "client_info": "1",
        },
    )


def public_client_id(emulator: RunningEmulator) -> str:
    return str(emulator["identities"]["public_client"]["client_id"])


def new_user(emulator: RunningEmulator, *, mfa_required: bool = True) -> tuple[str, str]:
    """Create a fresh user through the admin API; return (username, password)."""
    username = f"user-{uuid.uuid4().hex[:10]}@contoso.example"
    password = uuid.uuid4().hex
    emulator.admin(
        "POST",
        "/users",
        json={
            "username": username,
            "display_name": "Test User",
            "password": password,
            "mfa_required": mfa_required,
        },
    )
    return username, password


def approve(emulator: RunningEmulator, user_code: str, username: str | None = None) -> None:
    body = (
        {"user_code": user_code}
        if username is None
        else {"user_code": user_code, "username": username}
    )
    emulator.admin("POST", "/device-codes/approve", json=body)


def msal_http_client(emulator: RunningEmulator) -> requests.Session:
    """A requests session trusting the emulator's CA.

    MSAL's own ``verify=`` loses to ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` (requests merges the
    environment into every request), so hand MSAL a session that ignores the environment.
    """
    session = requests.Session()
    session.verify = emulator.ca_bundle
    session.trust_env = False
    return session


def public_app(emulator: RunningEmulator) -> msal.PublicClientApplication:
    """MSAL's public client pointed at the emulator (its own token cache)."""
    return msal.PublicClientApplication(
        public_client_id(emulator),
        authority=tenant_url(emulator),
        instance_discovery=False,
        http_client=msal_http_client(emulator),
    )


@dataclass
class SignedIn:
    """An MSAL app holding one user's tokens after a device-code sign-in."""

    app: msal.PublicClientApplication
    account: dict[str, Any]
    result: dict[str, Any]

    def refresh(self) -> dict[str, Any]:
        """Force a refresh-token redemption (what patwarden's silent refresh does)."""
        result: dict[str, Any] = self.app.acquire_token_silent_with_error(
            ADO_PATS, account=self.account, force_refresh=True
        )
        return result

    def cached_refresh_token(self) -> str:
        entries = list(self.app.token_cache.search(msal.TokenCache.CredentialType.REFRESH_TOKEN))
        assert len(entries) == 1
        return str(entries[0]["secret"])


def sign_in(emulator: RunningEmulator, username: str | None = None) -> SignedIn:
    """Device-code sign-in through MSAL, approved through the admin API as *username*."""
    app = public_app(emulator)
    flow = app.initiate_device_flow(scopes=ADO_PATS)
    assert "user_code" in flow, flow
    approve(emulator, flow["user_code"], username)
    result = app.acquire_token_by_device_flow(flow)
    assert "access_token" in result, result
    accounts = app.get_accounts()
    assert len(accounts) == 1
    return SignedIn(app=app, account=accounts[0], result=result)
