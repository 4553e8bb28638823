"""Helpers for the emulated Azure DevOps tests: real Entra tokens and small request wrappers.

User tokens come from the emulator's real device-code flow (approved through the admin API, as a
human would approve it in a browser); service-principal tokens from client credentials.
Access tokens outlive ``/_admin/reset`` (keys and seeded identities are kept), so they are cached
per emulator process.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.conftest import RunningEmulator

ADO = "499b84ac-1321-427f-aa17-267ca6975798"
PAT_API = "7.1-preview.1"
SUPPRESS = {"X-TFS-FedAuthRedirect": "Suppress", "Accept": "application/json"}


def basic(pat: str) -> dict[str, str]:
    """Headers for PAT (Basic) authentication with redirects suppressed."""
    encoded = base64.b64encode(f":{pat}".encode()).decode()
    return {"Authorization": f"Basic {encoded}", **SUPPRESS}


def bearer(token: str) -> dict[str, str]:
    """Headers for Entra bearer authentication with redirects suppressed."""
    return {"Authorization": f"Bearer {token}", **SUPPRESS}


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
            self.tokens[key] = self._device_code_token(username, scopes)
        return self.tokens[key]

    def _device_code_token(self, username: str, scopes: str) -> str:
        authority = f"{self.emulator['authority_host']}/{self.emulator['tenant_id']}"
        client_id = self.emulator["identities"]["public_client"]["client_id"]
        scope = " ".join(f"{ADO}/{item}" for item in scopes.split()) + " offline_access"
        started = self.client.post(
            f"{authority}/oauth2/v2.0/devicecode", data={"client_id": client_id, "scope": scope}
        )
        started.raise_for_status()
        flow = started.json()
        self.emulator.admin(
            "POST",
            "/device-codes/approve",
            json={"user_code": flow["user_code"], "username": username},
        )
        issued = self.client.post(
            f"{authority}/oauth2/v2.0/token",
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                "client_id": client_id,
                "device_code": flow["device_code"],
            },
        )
        issued.raise_for_status()
        return str(issued.json()["access_token"])

    def sp_token(self) -> str:
        """A client-credentials token of the seeded service principal."""
        key = ("service-principal", ".default")
        if key not in self.tokens:
            sp = self.emulator["identities"]["service_principal"]
            issued = self.client.post(
                f"{self.emulator['authority_host']}/{self.emulator['tenant_id']}/oauth2/v2.0/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": sp["client_id"],
                    "client_secret": sp["client_secret"],
                    "scope": f"{ADO}/.default",
                },
            )
            issued.raise_for_status()
            self.tokens[key] = str(issued.json()["access_token"])
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
        body.setdefault("validTo", "2099-01-01T00:00:00Z")
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
        body.setdefault("validTo", "2099-01-01T00:00:00Z")
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
