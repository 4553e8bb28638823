"""Test-only access tokens signed with a running emulator's own key (read from its state dir).

Used where a test needs a token the emulated Entra ID would issue but getting it through a real
sign-in is beside the point (a user token for a Key Vault RBAC check, a token for the wrong
audience, raw httpx calls).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from azure.core.credentials import AccessToken

from patwarden.emulator.directory import KEY_VAULT_RESOURCE
from patwarden.emulator.keys import SigningKey
from patwarden.emulator.store import Store
from tests.conftest import RunningEmulator


def mint_token(
    emulator: RunningEmulator,
    *,
    object_id: str,
    upn: str | None = None,
    client_id: str | None = None,
    audience: str = KEY_VAULT_RESOURCE,
    tenant_id: str | None = None,
    lifetime: int = 3600,
) -> str:
    """An access token like the emulator issues: a user token when *upn* is given, else an app's."""
    now = int(time.time())
    tenant = tenant_id or emulator["tenant_id"]
    claims: dict[str, Any] = {
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
        claims.update(idtyp="user", scp="user_impersonation", upn=upn, unique_name=upn)
    else:
        claims.update(idtyp="app", sub=object_id, app_displayname="test app")
    store = Store(emulator.state_dir / "emulator.db")
    try:
        return SigningKey(store).sign(claims)
    finally:
        store.close()


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
    user = emulator["identities"][who]
    return MintingCredential(emulator, object_id=user["object_id"], upn=user["username"])
