"""Client authentication at the token endpoint: none (public), secret, certificate, federated.

Secrets come in the form (``client_secret``) or as HTTP Basic client auth. Certificate assertions
are JWTs signed with the key of the app's registered certificate: RS256 with ``x5t`` (SHA-1
thumbprint, what azure-identity sends) or PS256 with ``x5t#S256`` (what MSAL sends when it knows
the certificate), ``aud`` = the token endpoint, ``iss`` = ``sub`` = client id (contract §4.2).
Assertions that are not the app's own (``iss`` ≠ client id) are workload-identity tokens and go
to :mod:`patwarden_emulator.entra.federation`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote_plus

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from patwarden_emulator.context import Emulator
from patwarden_emulator.directory import App
from patwarden_emulator.entra.errors import AadError, missing_parameter
from patwarden_emulator.entra.federation import verify_federated_assertion

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
Method = Literal["none", "secret", "certificate", "federated"]


@dataclass(frozen=True)
class ClientAuth:
    """Who the calling client is and how it proved it."""

    app: App
    method: Method

    @property
    def appidacr(self) -> str:
        """``0`` public client, ``1`` secret, ``2`` certificate or federated assertion."""
        return {"none": "0", "secret": "1"}.get(self.method, "2")


def _invalid_client(code: int, message: str) -> AadError:
    return AadError(code, "invalid_client", message, status=401)


def _basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    if not authorization or not authorization.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return None
    return unquote_plus(client_id), unquote_plus(secret)


def authenticate_client(
    emu: Emulator,
    *,
    form: Mapping[str, str],
    authorization: str | None,
    token_endpoints: frozenset[str],
) -> ClientAuth:
    """Identify and authenticate the client of a token request.

    Raises:
        AadError: missing client id (900144), unknown app (700016), a public client presenting a
            credential (700025), a confidential client without one (7000218), a wrong secret
            (7000215) or a bad assertion (7000xx / 70021).
    """
    basic = _basic_credentials(authorization)
    client_id = form.get("client_id") or (basic[0] if basic else "")
    if not client_id:
        raise missing_parameter("client_id")
    app = emu.directory.app(client_id)
    if app is None:
        raise AadError(
            700016,
            "unauthorized_client",
            f"Application with identifier '{client_id}' was not found in the directory "
            f"'{emu.tenant_id}'. This can happen if the application has not been installed by the "
            "administrator of the tenant or consented to by any user in the tenant. You may have "
            "sent your authentication request to the wrong tenant.",
        )
    secret = form.get("client_secret") or (basic[1] if basic else None)
    assertion = form.get("client_assertion")
    if (secret or assertion) and app.public_client:
        raise _invalid_client(
            700025,
            "Client is public so neither 'client_assertion' nor 'client_secret' should be "
            "presented.",
        )
    if secret:
        if app.secret is None or not secrets.compare_digest(secret.encode(), app.secret.encode()):
            raise _invalid_client(
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                f"the client secret value, not the client secret ID, for a secret added to app "
                f"'{app.client_id}'.",
            )
        return ClientAuth(app=app, method="secret")
    if assertion:
        if form.get("client_assertion_type") != JWT_BEARER:
            raise missing_parameter("client_assertion_type")
        return _authenticate_assertion(emu, app, assertion, token_endpoints)
    if app.public_client:
        return ClientAuth(app=app, method="none")
    raise _invalid_client(
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or "
        "'client_secret'.",
    )


def _authenticate_assertion(
    emu: Emulator, app: App, assertion: str, token_endpoints: frozenset[str]
) -> ClientAuth:
    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.InvalidTokenError as err:
        raise AadError(
            50027, "invalid_request", f"JWT token is invalid or malformed: {type(err).__name__}."
        ) from err
    if claims.get("iss") != app.client_id and ("x5t" not in header and "x5t#S256" not in header):
        verify_federated_assertion(emu, app=app, assertion=assertion)
        return ClientAuth(app=app, method="federated")
    _verify_certificate_assertion(app, assertion, header, token_endpoints)
    return ClientAuth(app=app, method="certificate")


def _thumbprints(certificate: x509.Certificate) -> dict[str, bytes]:
    der = certificate.public_bytes(serialization.Encoding.DER)
    return {
        "x5t": hashlib.sha1(der).digest(),  # noqa: S324 - the x5t header is SHA-1 by definition
        "x5t#S256": hashlib.sha256(der).digest(),
    }


def _thumbprint_bytes(value: object) -> bytes | None:
    """Decode a presented thumbprint (base64url or base64, padded or not; MSAL pads)."""
    if not isinstance(value, str):
        return None
    text = value.strip().rstrip("=").replace("+", "-").replace("/", "_")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def _verify_certificate_assertion(
    app: App, assertion: str, header: Mapping[str, object], token_endpoints: frozenset[str]
) -> None:
    algorithm = header.get("alg")
    if algorithm not in ("RS256", "PS256"):
        raise _invalid_client(
            5002730, f"Invalid JWT token. Unsupported signing algorithm {algorithm!r}."
        )
    if app.certificate_pem is None:
        raise _invalid_client(
            700027,
            f"The certificate with identifier used to sign the client assertion is not registered "
            f"on application. [Reason - No certificate is registered for app '{app.client_id}'.]",
        )
    certificate = x509.load_pem_x509_certificate(app.certificate_pem.encode())
    expected = _thumbprints(certificate)
    presented = {name: header.get(name) for name in expected if header.get(name)}
    if not presented or any(
        _thumbprint_bytes(value) != expected[name] for name, value in presented.items()
    ):
        raise _invalid_client(
            700027,
            "The certificate with identifier used to sign the client assertion is not registered "
            f"on application. [Reason - The key was not found., Thumbprint of key used by client: "
            f"'{next(iter(presented.values()), '')}', Please visit the Azure Portal, Graph "
            f"Explorer or directly use MS Graph to see configured keys for app Id "
            f"'{app.client_id}'.]",
        )
    try:
        claims = jwt.decode(
            assertion,
            certificate.public_key(),  # type: ignore[arg-type]  # RSA certificates only
            algorithms=[str(algorithm)],
            options={"verify_aud": False, "require": ["exp", "iss", "sub", "aud"]},
            leeway=300,
        )
    except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError) as err:
        raise _invalid_client(
            700024, "Client assertion is not within its valid time range."
        ) from err
    except jwt.InvalidTokenError as err:
        raise _invalid_client(700027, "Client assertion failed signature validation.") from err
    if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
        raise _invalid_client(
            700021, "Client assertion application identifier doesn't match 'client_id' parameter."
        )
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if not any(str(aud).rstrip("/") in token_endpoints for aud in audiences):
        raise _invalid_client(
            700023, "Client assertion audience claim does not match Realm issuer."
        )
