"""Emulated Entra ID: discovery, error shape, client credentials with secrets and certificates."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import time
import uuid
from pathlib import Path

import jwt
import msal
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CertificateCredential
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.conftest import RunningEmulator
from tests.emulator.entra_support import msal_http_client
from tests.support.tokens import ADO, KEY_VAULT, claims, post_token, sp_credential, tenant_url

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _sp(emu: RunningEmulator) -> dict[str, str]:
    return dict(emu["identities"]["service_principal"])


def _credential_kwargs(emu: RunningEmulator) -> dict[str, object]:
    return {
        "authority": emu["authority_host"],
        "disable_instance_discovery": True,
        "connection_verify": emu.ca_bundle,
    }


# discovery ------------------------------------------------------------------------------------
@pytest.mark.parametrize("alias", [None, "organizations", "common"])
def test_openid_configuration_names_the_endpoints_msal_reads(
    emu: RunningEmulator, alias: str | None
) -> None:
    segment = alias or emu["tenant_id"]
    with emu.http() as client:
        response = client.get(f"{tenant_url(emu, segment)}/v2.0/.well-known/openid-configuration")
        document = response.json()
        keys = client.get(document["jwks_uri"]).json()
    assert response.status_code == 200
    base = f"{emu['authority_host']}/{segment}"
    assert document["token_endpoint"] == f"{base}/oauth2/v2.0/token"
    assert document["device_authorization_endpoint"] == f"{base}/oauth2/v2.0/devicecode"
    assert document["authorization_endpoint"] == f"{base}/oauth2/v2.0/authorize"
    expected_issuer = (
        f"{emu['authority_host']}/{{tenantid}}/v2.0"
        if alias
        else f"{emu['authority_host']}/{emu['tenant_id']}/v2.0"
    )
    assert document["issuer"] == expected_issuer
    assert [key["kty"] for key in keys["keys"]] == ["RSA"]


def test_unknown_tenant_is_refused_with_aadsts90002(emu: RunningEmulator) -> None:
    with emu.http() as client:
        response = client.get(
            f"{emu['authority_host']}/{uuid.uuid4()}/v2.0/.well-known/openid-configuration"
        )
    assert response.status_code == 400
    assert response.json()["error_codes"] == [90002]


def test_error_body_has_the_entra_shape(emu: RunningEmulator) -> None:
    correlation = str(uuid.uuid4())
    response = post_token(
        emu,
        {"grant_type": "client_credentials", "client_id": str(uuid.uuid4()), "scope": "x/.default"},
        headers={"client-request-id": correlation},
    )
    body = response.json()
    assert response.status_code == 400
    assert body["error"] == "unauthorized_client"
    assert body["error_codes"] == [700016]
    assert re.fullmatch(
        r"AADSTS700016: .+\r\nTrace ID: [0-9a-f-]{36}\r\nCorrelation ID: "
        + correlation
        + r"\r\nTimestamp: \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ",
        body["error_description"],
        flags=re.DOTALL,
    )
    assert body["correlation_id"] == correlation
    assert body["trace_id"] in body["error_description"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", body["timestamp"])
    assert body["error_uri"].endswith("/error?code=700016")


def test_unsupported_grant_type(emu: RunningEmulator) -> None:
    response = post_token(
        emu, {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "client_id": "x"}
    )
    assert response.json()["error"] == "unsupported_grant_type"


# client credentials ---------------------------------------------------------------------------
def test_client_secret_credential_gets_an_app_token(emu: RunningEmulator) -> None:
    sp = _sp(emu)
    credential = sp_credential(emu)
    token = claims(credential.get_token(f"{ADO}/.default").token)
    assert token["idtyp"] == "app"
    assert token["aud"] == ADO
    assert "scp" not in token
    assert token["appid"] == sp["client_id"]
    assert token["oid"] == sp["object_id"]
    assert token["tid"] == emu["tenant_id"]
    assert token["iss"] == f"https://sts.windows.net/{emu['tenant_id']}/"
    assert token["appidacr"] == "1"
    assert token["exp"] - token["iat"] == 3600


def test_wrong_client_secret_is_aadsts7000215(emu: RunningEmulator) -> None:
    credential = sp_credential(emu, client_secret="not-the-secret")
    with pytest.raises(ClientAuthenticationError) as caught:
        credential.get_token(f"{ADO}/.default")
    assert "AADSTS7000215" in str(caught.value)


def test_invalid_client_is_http_401(emu: RunningEmulator) -> None:
    sp = _sp(emu)
    response = post_token(
        emu,
        {
            "grant_type": "client_credentials",
            "client_id": sp["client_id"],
            "client_secret": "wrong",
            "scope": f"{ADO}/.default",
        },
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_http_basic_client_authentication(emu: RunningEmulator) -> None:
    sp = _sp(emu)
    response = post_token(
        emu,
        {"grant_type": "client_credentials", "scope": f"{KEY_VAULT}/.default"},
        auth=(sp["client_id"], sp["client_secret"]),
    )
    assert response.status_code == 200, response.text
    assert claims(response.json()["access_token"])["aud"] == KEY_VAULT


def test_client_credentials_need_a_default_scope(emu: RunningEmulator) -> None:
    sp = _sp(emu)
    response = post_token(
        emu,
        {
            "grant_type": "client_credentials",
            "client_id": sp["client_id"],
            "client_secret": sp["client_secret"],
            "scope": f"{ADO}/vso.pats",
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"
    assert response.json()["error_codes"] == [1002012]


def test_unknown_resource_is_aadsts500011(emu: RunningEmulator) -> None:
    sp = _sp(emu)
    response = post_token(
        emu,
        {
            "grant_type": "client_credentials",
            "client_id": sp["client_id"],
            "client_secret": sp["client_secret"],
            "scope": "https://graph.example/.default",
        },
    )
    assert response.json()["error_codes"] == [500011]


# certificates ---------------------------------------------------------------------------------
def test_certificate_credential_rs256_x5t(emu: RunningEmulator) -> None:
    sp = _sp(emu)
    credential = CertificateCredential(
        emu["tenant_id"], sp["client_id"], sp["certificate_path"], **_credential_kwargs(emu)
    )
    token = claims(credential.get_token(f"{KEY_VAULT}/.default").token)
    assert token["idtyp"] == "app"
    assert token["aud"] == KEY_VAULT
    assert token["appidacr"] == "2"


def test_msal_certificate_ps256_x5t_s256(emu: RunningEmulator) -> None:
    sp = _sp(emu)
    pem = Path(sp["certificate_path"]).read_text()
    app = msal.ConfidentialClientApplication(
        sp["client_id"],
        client_credential={"private_key": pem, "public_certificate": pem},
        authority=tenant_url(emu),
        instance_discovery=False,
        http_client=msal_http_client(emu),
    )
    result = app.acquire_token_for_client([f"{ADO}/.default"])
    assert "access_token" in result, result
    assert claims(result["access_token"])["idtyp"] == "app"


def _assertion(
    emu: RunningEmulator,
    *,
    key: rsa.RSAPrivateKey,
    certificate: x509.Certificate,
    audience: str | None = None,
    lifetime: int = 600,
) -> str:
    sp = _sp(emu)
    der = certificate.public_bytes(serialization.Encoding.DER)
    x5t = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).decode()  # noqa: S324 - x5t is SHA-1
    now = int(time.time())
    return jwt.encode(
        {
            "aud": audience or f"{tenant_url(emu)}/oauth2/v2.0/token",
            "iss": sp["client_id"],
            "sub": sp["client_id"],
            "jti": str(uuid.uuid4()),
            "iat": now - 700 if lifetime < 0 else now,
            "nbf": now - 700 if lifetime < 0 else now,
            "exp": now + lifetime,
        },
        key,
        algorithm="RS256",
        headers={"x5t": x5t},
    )


def _registered(emu: RunningEmulator) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    pem = Path(_sp(emu)["certificate_path"]).read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key, x509.load_pem_x509_certificate(pem)


def _post_assertion(emu: RunningEmulator, assertion: str) -> dict[str, object]:
    response = post_token(
        emu,
        {
            "grant_type": "client_credentials",
            "client_id": _sp(emu)["client_id"],
            "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion,
            "scope": f"{ADO}/.default",
        },
    )
    body: dict[str, object] = response.json()
    body["status"] = response.status_code
    return body


def test_hand_made_assertion_is_accepted(emu: RunningEmulator) -> None:
    key, certificate = _registered(emu)
    body = _post_assertion(emu, _assertion(emu, key=key, certificate=certificate))
    assert body["status"] == 200
    assert "access_token" in body


def test_assertion_signed_by_another_key_is_refused(emu: RunningEmulator) -> None:
    _, certificate = _registered(emu)
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    body = _post_assertion(emu, _assertion(emu, key=impostor, certificate=certificate))
    assert body["status"] == 401
    assert body["error"] == "invalid_client"
    assert body["error_codes"] == [700027]
    assert "signature validation" in str(body["error_description"])


def test_assertion_with_wrong_audience_is_refused(emu: RunningEmulator) -> None:
    key, certificate = _registered(emu)
    assertion = _assertion(
        emu, key=key, certificate=certificate, audience="https://login.example/token"
    )
    assert _post_assertion(emu, assertion)["error_codes"] == [700023]


def test_expired_assertion_is_refused(emu: RunningEmulator) -> None:
    key, certificate = _registered(emu)
    assertion = _assertion(emu, key=key, certificate=certificate, lifetime=-400)
    assert _post_assertion(emu, assertion)["error_codes"] == [700024]


def test_unregistered_certificate_is_refused(emu: RunningEmulator) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "someone-else")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2100, 1, 1, tzinfo=dt.UTC))
        .sign(key, hashes.SHA256())
    )
    body = _post_assertion(emu, _assertion(emu, key=key, certificate=certificate))
    assert body["error_codes"] == [700027]
    assert "not registered" in str(body["error_description"])
