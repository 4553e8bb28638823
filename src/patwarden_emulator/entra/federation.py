"""Workload identity federation: an emulated external IdP (``{base}/oidc``) and its credentials.

``POST /_admin/federated-credentials`` registers ``(issuer, subject, audience)`` on an app;
``POST /_admin/federated-tokens`` mints a token from the emulated IdP (signed with the emulator's
key, ``iss`` = ``{base}/oidc``) to drop into ``AZURE_FEDERATED_TOKEN_FILE``. The token endpoint
accepts it as ``client_assertion`` when it matches a credential of the app, else AADSTS70021
(contract §4.2 "Workload identity federation").
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt

from patwarden_emulator.context import Emulator
from patwarden_emulator.directory import App
from patwarden_emulator.entra.errors import AadError

SCHEMA = """
CREATE TABLE IF NOT EXISTS entra_federated_credentials (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    audience TEXT NOT NULL
);
"""

DEFAULT_AUDIENCE = "api://AzureADTokenExchange"
EXTERNAL_TOKEN_LIFETIME = 3600


def external_issuer(emu: Emulator) -> str:
    """The ``iss`` of tokens minted by the emulated external IdP."""
    return f"{emu.base_url}/oidc"


def oidc_configuration(emu: Emulator) -> dict[str, Any]:
    """The external IdP's OpenID discovery document."""
    issuer = external_issuer(emu)
    return {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/keys",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }


def add_federated_credential(
    emu: Emulator, *, client_id: str, issuer: str, subject: str, audience: str
) -> str:
    """Register a federated credential on an app; return its id."""
    emu.store.ensure_schema(SCHEMA)
    credential_id = str(uuid.uuid4())
    emu.store.execute(
        "INSERT INTO entra_federated_credentials (id, client_id, issuer, subject, audience)"
        " VALUES (?, ?, ?, ?, ?)",
        (credential_id, client_id, issuer.rstrip("/"), subject, audience),
    )
    return credential_id


def mint_external_token(emu: Emulator, *, subject: str, audience: str) -> str:
    """A token from the emulated external IdP (what Kubernetes would project into a file)."""
    now = int(time.time())
    token = emu.keys.sign(
        {
            "iss": external_issuer(emu),
            "sub": subject,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + EXTERNAL_TOKEN_LIFETIME,
            "jti": str(uuid.uuid4()),
        }
    )
    emu.remember_secret("federated_token", token)
    return token


def clear(emu: Emulator) -> None:
    """Forget every federated credential (emulator reset)."""
    emu.store.ensure_schema(SCHEMA)
    emu.store.execute("DELETE FROM entra_federated_credentials")


def verify_federated_assertion(emu: Emulator, *, app: App, assertion: str) -> None:
    """Accept *assertion* only if it is a valid token of a federated credential of *app*.

    Raises:
        AadError: AADSTS700024 (outside its validity), AADSTS700027 (bad signature or an issuer
            the emulator cannot verify), AADSTS70021 (no matching federated credential).
    """
    emu.store.ensure_schema(SCHEMA)
    try:
        claims = emu.keys.verify(assertion, audience=None)
    except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError) as err:
        raise AadError(
            700024,
            "invalid_client",
            "Client assertion is not within its valid time range.",
            status=401,
        ) from err
    except jwt.InvalidTokenError as err:
        raise AadError(
            700027,
            "invalid_client",
            "Client assertion failed signature validation. The emulator verifies federated tokens "
            f"of its own issuer {external_issuer(emu)} only.",
            status=401,
        ) from err
    issuer = str(claims.get("iss", "")).rstrip("/")
    subject = str(claims.get("sub", ""))
    audiences = claims.get("aud")
    audience_list = [str(a) for a in (audiences if isinstance(audiences, list) else [audiences])]
    rows = emu.store.query(
        "SELECT audience FROM entra_federated_credentials WHERE client_id = ? AND issuer = ?"
        " AND subject = ?",
        (app.client_id, issuer, subject),
    )
    if issuer != external_issuer(emu) or not any(r["audience"] in audience_list for r in rows):
        raise AadError(
            70021,
            "invalid_request",
            "No matching federated identity record found for presented assertion. Assertion "
            f"Issuer: '{issuer}'. Assertion Subject: '{subject}'. Assertion Audience: "
            f"'{','.join(audience_list)}'.",
        )
