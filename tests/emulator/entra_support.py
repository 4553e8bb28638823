"""Helpers of the Entra emulator tests: fresh users, and MSAL's own device-code sign-in.

The raw token endpoint and the device-code flow are in :mod:`tests.support.tokens` and
:mod:`tests.support.device_codes`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import msal
import requests

from tests.conftest import RunningEmulator
from tests.support.device_codes import approve
from tests.support.tokens import ADO_PATS, public_client_id, tenant_url


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
