"""A test's view of the emulated Azure DevOps: one keep-alive client, cached tokens, PAT API calls.

User tokens come from the emulator's real device-code flow (approved through the admin API, as a
human would approve it in a browser); service-principal tokens from client credentials.
Access tokens outlive ``/_admin/reset`` (keys and seeded identities are kept), so they are cached
per emulator process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx

from tests.conftest import RunningEmulator
from tests.support import clock
from tests.support.device_codes import device_code_token
from tests.support.pats import bearer
from tests.support.tokens import client_credentials_token

PAT_API = "7.1-preview.1"


def valid_to(days: int = 90) -> str:
    """An expiry ``days`` after the tests' clock (never a fixed date that one day passes)."""
    return (clock.now() + timedelta(days=days)).strftime("%Y-%m-%dT00:00:00Z")


@dataclass
class Ado:
    """A test's view of the emulated Azure DevOps (one httpx client, cached tokens)."""

    emulator: RunningEmulator
    client: httpx.Client
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def org(self) -> str:
        return str(self.emulator["organization"])

    @property
    def rotator(self) -> str:
        return str(self.emulator["identities"]["rotator"]["username"])

    @property
    def admin_user(self) -> str:
        return str(self.emulator["identities"]["org_admin"]["username"])

    def vssps(self, path: str, *, org: str | None = None) -> str:
        return f"{self.emulator['vssps_url']}/{org or self.org}/{path}"

    def devops(self, path: str, *, org: str | None = None) -> str:
        return f"{self.emulator['azure_devops_url']}/{org or self.org}/{path}"

    # tokens ---------------------------------------------------------------------------------
    def user_token(self, username: str | None = None, *, scopes: str = ".default") -> str:
        """A delegated Azure DevOps token for *username* through the device-code flow."""
        username = username or self.rotator
        key = (username, scopes)
        if key not in self.tokens:
            self.tokens[key] = device_code_token(self.emulator, username, scopes=scopes)
        return self.tokens[key]

    def sp_token(self) -> str:
        """A client-credentials token of the seeded service principal."""
        key = ("service-principal", ".default")
        if key not in self.tokens:
            self.tokens[key] = client_credentials_token(self.emulator)
        return self.tokens[key]

    # PAT API --------------------------------------------------------------------------------
    def pats(
        self,
        method: str,
        *,
        token: str | None = None,
        params: dict[str, Any] | None = None,
        json: Any = None,
        org: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Call ``tokens/pats`` as the rotator (or with *token* / *headers*)."""
        all_params = {"api-version": PAT_API, **(params or {})}
        return self.client.request(
            method,
            self.vssps("_apis/tokens/pats", org=org),
            params=all_params,
            json=json,
            headers=headers or bearer(token or self.user_token()),
        )

    def create_pat(self, **body: Any) -> dict[str, Any]:
        """Create a PAT as the rotator and return the ``patToken`` (asserting success)."""
        body.setdefault("displayName", "test-token")
        body.setdefault("scope", "vso.code")
        body.setdefault("validTo", valid_to())
        response = self.pats("POST", json=body)
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["patTokenError"] == "none", result
        token: dict[str, Any] = result["patToken"]
        return token

    def admin_pat(self, **body: Any) -> dict[str, Any]:
        """Create a PAT through the admin API (any owner, expiry or state)."""
        body.setdefault("username", self.rotator)
        body.setdefault("displayName", "admin-made")
        body.setdefault("scope", "vso.code")
        body.setdefault("validTo", valid_to())
        result: dict[str, Any] = self.admin("POST", "/pats", json=body)
        return result

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the admin API over this test's keep-alive client; return the JSON body."""
        response = self.client.request(method, self.emulator["admin_url"] + path, **kwargs)
        response.raise_for_status()
        return response.json()

    def set_policies(self, **policies: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("PUT", "/policies", json=policies)
        return result


_TOKEN_CACHE: dict[str, dict[tuple[str, str], str]] = {}


def make_ado(emulator: RunningEmulator, client: httpx.Client) -> Ado:
    """An :class:`Ado` sharing one token cache per emulator process."""
    cache = _TOKEN_CACHE.setdefault(str(emulator["admin_url"]), {})
    return Ado(emulator=emulator, client=client, tokens=cache)
