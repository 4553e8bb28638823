"""Sign in here, run there: hand the rotator's sign-in from a workstation to a runner, sealed.

``patwarden login --export FILE`` (workstation) signs in and writes the cache and account record
to FILE, AES-256-GCM sealed with the identity's configured cache key — the *runner's* key, which
the workstation's config references too (``{env}``, ``{file}`` or ``{key_vault}``). Nothing is
written in plaintext and nothing stays on the workstation. ``patwarden login --import FILE``
(runner) opens it with the same key, checks it was made for this app registration and tenant,
stores it in the runner's configured cache, records the hand-over and redeems the refresh token
once: that silent refresh proves the hand-over worked.
"""

from __future__ import annotations

import contextlib
import json
import platform
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from patwarden.errors import DOCS, AuthError
from patwarden.identity.account import AccountRecord
from patwarden.identity.cache_crypto import CacheCipher
from patwarden.identity.cache_store import EncryptedFileStore
from patwarden.identity.scopes import PAT_SCOPES
from patwarden.identity.user import UserCredential

HANDOVER_DOCS = f"{DOCS}/identities.md#sign-in-here-run-there"


class SealedFile(EncryptedFileStore):
    """An exported sign-in: one sealed file, no lock file beside it (nobody refreshes it)."""

    @property
    def description(self) -> str:
        """``sealed file <path>``."""
        return f"sealed file {self.path}"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Nothing to lock: only this process writes or reads the file."""
        yield


def _cipher(user: UserCredential) -> CacheCipher:
    cipher = getattr(user.store, "cipher", None)
    if not isinstance(cipher, CacheCipher):
        name = user.settings.name
        raise AuthError(
            f"identity {name!r} has no cache key, so its sign-in cannot be handed over sealed",
            hint=(
                "set cache.key of the identity to the runner's key ({env: …}, {file: …} or "
                "{key_vault: …}) on both machines; make one with `patwarden config cache-key`"
            ),
            docs=HANDOVER_DOCS,
        )
    return cipher


def export_target(user: UserCredential, path: Path) -> SealedFile:
    """Where ``login --export`` writes: *path*, sealed with the identity's cache key."""
    return SealedFile(path=path, cipher=_cipher(user))


def import_sign_in(user: UserCredential, path: Path, *, now: datetime) -> AccountRecord:
    """Store the sign-in exported to *path* in *user*'s configured cache; refresh it once.

    Raises:
        AuthError: the file is missing, sealed with another key, altered, or made for another
            app registration or tenant; the silent refresh fails (the reason says why).
    """
    settings = user.settings
    try:
        envelope = SealedFile(path=path, cipher=_cipher(user)).load()
    except IsADirectoryError:
        envelope = None
    if envelope is None or envelope.account is None:
        raise AuthError(
            f"no exported sign-in at {path}",
            hint="run `patwarden login --export FILE` on the workstation and copy FILE here",
            docs=HANDOVER_DOCS,
        )
    record = envelope.account
    if record.client_id != settings.client_id or record.authority != settings.authority:
        raise AuthError(
            f"the sign-in in {path} was made for another app registration or tenant "
            f"({record.client_id} at {record.authority}); identity {settings.name!r} uses "
            f"{settings.client_id} at {settings.authority}",
            hint="use the same client_id and tenant_id in both configurations, then export again",
            docs=HANDOVER_DOCS,
        )
    record = replace(record, handed_over_to=platform.node() or "unknown host", handed_over_at=now)
    store = user.store
    with store.locked():
        store.save(replace(envelope, account=record))
    user.close()  # forget in-memory tokens: the proof must come from the imported cache
    user.get_token(*PAT_SCOPES, claims=_force_refresh(now))
    account = user.account()
    return account or record


def _force_refresh(now: datetime) -> str:
    # A claims challenge makes MSAL skip the cached access token and redeem the refresh token.
    nbf = {"essential": True, "value": str(int(now.timestamp()))}
    return json.dumps({"access_token": {"nbf": nbf}})
