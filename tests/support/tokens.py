"""Entra ID access tokens from the emulator, and the raw token endpoint they come from.

Two ways to a token that is not the point of the test:

- the real token endpoint: client credentials of the seeded service principal, over raw HTTP
  (:func:`client_credentials_token`) or through azure-identity (:func:`sp_credential`);
- minted with the emulator's own signing key, read from its state dir (:func:`mint_token`,
  :func:`minted_token`, :func:`user_credential`): cheap, and it can say anything the emulated
  Entra ID would issue (a user token for a Key Vault RBAC check, a token for the wrong audience).

A user's token through the real device-code flow is in :mod:`tests.support.device_codes`.

PyJWT and the emulator's own modules are imported where they are used: a benchmark importing
:mod:`tests.support.device_codes` measures the peak RSS of processes it starts, which includes its
own (``ru_maxrss`` of a child counts the parent's pages until the child's ``exec``).
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

import httpx
from azure.core.credentials import AccessToken

from tests.support.emulator import RunningEmulator

if TYPE_CHECKING:
    from azure.identity import ClientSecretCredential

ADO = "499b84ac-1321-427f-aa17-267ca6975798"
ADO_DEFAULT = f"{ADO}/.default"
ADO_PATS = [f"{ADO}/vso.pats", f"{ADO}/vso.pats_manage"]
KEY_VAULT = "https://vault.azure.net"


def claims(token: str) -> dict[str, Any]:
    """Decode a JWT without verifying it (the emulator's own tests check what it issued)."""
    import jwt

    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def tenant_url(emulator: RunningEmulator, tenant: str | None = None) -> str:
    return f"{emulator['authority_host']}/{tenant or emulator['tenant_id']}"


def public_client_id(emulator: RunningEmulator) -> str:
    return str(emulator["identities"]["public_client"]["client_id"])


def post_token(emulator: RunningEmulator, form: dict[str, str], **kwargs: Any) -> httpx.Response:
    """POST the v2 token endpoint with a form body."""
    with emulator.http() as client:
        return client.post(f"{tenant_url(emulator)}/oauth2/v2.0/token", data=form, **kwargs)


def client_credentials_token(emulator: RunningEmulator, scope: str = ADO_DEFAULT) -> str:
    """An access token of the seeded service principal (client credentials, raw HTTP)."""
    sp = emulator["identities"]["service_principal"]
    issued = post_token(
        emulator,
        {
            "grant_type": "client_credentials",
            "client_id": sp["client_id"],
            "client_secret": sp["client_secret"],
            "scope": scope,
        },
    )
    issued.raise_for_status()
    return str(issued.json()["access_token"])


def sp_credential(
    emulator: RunningEmulator, *, client_secret: str | None = None
) -> ClientSecretCredential:
    """The seeded service principal as a real azure-identity credential (signing in at the
    emulated Entra ID), with its own secret unless *client_secret* is given."""
    from azure.identity import ClientSecretCredential

    sp = emulator["identities"]["service_principal"]
    return ClientSecretCredential(
        emulator["tenant_id"],
        sp["client_id"],
        sp["client_secret"] if client_secret is None else client_secret,
        authority=emulator["authority_host"],
        disable_instance_discovery=True,
        connection_verify=emulator.ca_bundle,
    )


def mint_token(
    emulator: RunningEmulator,
    *,
    object_id: str,
    upn: str | None = None,
    client_id: str | None = None,
    audience: str = KEY_VAULT,
    tenant_id: str | None = None,
    lifetime: int = 3600,
) -> str:
    """An access token like the emulator issues: a user token when *upn* is given, else an app's."""
    from patwarden_emulator.keys import SigningKey
    from patwarden_emulator.store import Store

    now = int(time.time())
    tenant = tenant_id or emulator["tenant_id"]
    token_claims: dict[str, Any] = {
        "aud": audience,
        "iss": f"https://sts.windows.net/{tenant}/",
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "oid": object_id,
        "tid": tenant,
        "appid": client_id or emulator["identities"]["public_client"]["client_id"],
        "uti": uuid.uuid4().hex,
        "ver": "1.0",
    }
    if upn is not None:
        token_claims.update(idtyp="user", scp="user_impersonation", upn=upn, unique_name=upn)
    else:
        token_claims.update(idtyp="app", sub=object_id, app_displayname="test app")
    store = Store(emulator.state_dir / "emulator.db")
    try:
        return SigningKey(store).sign(token_claims)
    finally:
        store.close()


def seeded(emulator: RunningEmulator, who: str) -> dict[str, str]:
    """:func:`mint_token`'s identity arguments for a seeded principal: a user (``rotator``,
    ``org_admin``, …) or the ``service_principal``."""
    principal = emulator["identities"][who]
    if who == "service_principal":
        return {"object_id": principal["object_id"], "client_id": principal["client_id"]}
    return {"object_id": principal["object_id"], "upn": principal["username"]}


def minted_token(
    emulator: RunningEmulator, who: str = "rotator", *, audience: str = KEY_VAULT
) -> str:
    """A fresh minted token of a seeded principal (see :func:`seeded`) for *audience*."""
    return mint_token(emulator, audience=audience, **seeded(emulator, who))


class MintingCredential:
    """A ``TokenCredential`` handing out minted tokens, recording what it was asked for."""

    def __init__(self, emulator: RunningEmulator, **identity: Any) -> None:
        self.emulator = emulator
        self.identity = identity
        self.requests: list[tuple[tuple[str, ...], str | None]] = []

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """Mint a token for the (single) requested scope."""
        self.requests.append((scopes, tenant_id))
        audience = scopes[0].removesuffix("/.default")
        token = mint_token(self.emulator, audience=audience, **self.identity)
        return AccessToken(token, int(time.time()) + 3600)


def user_credential(emulator: RunningEmulator, who: str = "rotator") -> MintingCredential:
    """A credential for one of the seeded users (``rotator`` or ``org_admin``)."""
    return MintingCredential(emulator, **seeded(emulator, who))
