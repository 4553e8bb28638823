"""Discovery for the emulated Entra ID: tenants, the OpenID configuration, token endpoint URLs."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from patwarden_emulator.context import Emulator
from patwarden_emulator.entra.errors import AadError

TENANT_ALIASES = ("organizations", "common")
CLAIMS_SUPPORTED = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "acr",
    "nonce",
    "preferred_username",
    "name",
    "tid",
    "ver",
    "at_hash",
    "c_hash",
    "email",
]

Form = dict[str, str]


def tenant_segment(emu: Emulator, tenant: str) -> str:
    """Return *tenant* if it names the emulated tenant (id or alias).

    Raises:
        AadError: AADSTS90002 for any other tenant.
    """
    if tenant.lower() == emu.tenant_id.lower() or tenant.lower() in TENANT_ALIASES:
        return tenant
    raise AadError(
        90002,
        "invalid_request",
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
        f"signing into the correct cloud. This emulator serves tenant {emu.tenant_id} (or "
        "'organizations'/'common').",
    )


def token_endpoints(emu: Emulator, segment: str) -> frozenset[str]:
    """Every URL a certificate assertion's ``aud`` may name for this tenant."""
    segments = {segment, emu.tenant_id, *TENANT_ALIASES}
    return frozenset(
        url
        for seg in segments
        for url in (f"{emu.base_url}/{seg}/oauth2/v2.0/token", f"{emu.base_url}/{seg}/oauth2/token")
    )


async def read_form(request: Request) -> Form:
    """Parse an ``application/x-www-form-urlencoded`` body (last value wins)."""
    body = await request.body()
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


def openid_configuration(emu: Emulator, segment: str) -> dict[str, Any]:
    """The v2 OpenID discovery document MSAL reads (endpoints echo the tenant segment asked for)."""
    base = f"{emu.base_url}/{segment}"
    issuer = emu.issuer_v2
    if segment.lower() in TENANT_ALIASES:
        issuer = f"{emu.authority_host}/{{tenantid}}/v2.0"
    return {
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{emu.base_url}/oidc/userinfo",
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
        "claims_supported": CLAIMS_SUPPORTED,
        "kerberos_endpoint": f"{base}/kerberos",
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }
