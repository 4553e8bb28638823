"""A user identity's encrypted cache file, described by plain values and opened from them.

:class:`~patwarden.identity.credential_set.CredentialSet` describes each ``cache: {kind: file}``
of the config as a :class:`FileCache` (:func:`~patwarden.identity.credential_set.file_cache`) and
opens it here; ``status`` opens the same description kept in its snapshot of the config
(:mod:`patwarden.app.snapshot`), without loading the config models. Light to import: no pydantic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from patwarden.identity.cache_crypto import identity_binding
from patwarden.identity.cache_generation import guarded
from patwarden.identity.cache_keys import LocalKey, local_cache_cipher
from patwarden.identity.cache_store import CacheStore, EncryptedFileStore

__all__ = ["FileCache"]


@dataclass(frozen=True, kw_only=True)
class FileCache:
    """Where *identity*'s token cache lives, the key it is sealed with, what the seal binds it to
    (tenant, client, pinned account) and the state directory holding its generation record."""

    identity: str
    path: Path
    key: LocalKey
    tenant_id: str | None
    client_id: str
    account: str | None
    state_dir: Path

    def open(self, create_key: bool) -> CacheStore:
        """The cache store, guarded against an older copy put back (``create_key``: login only).

        Raises:
            CacheKeyUnavailable | CacheKeyInvalid | SecretUnavailable: the key cannot be read.
        """
        cipher = local_cache_cipher(
            identity=self.identity,
            key=self.key,
            create=create_key,
            binding=identity_binding(
                identity=self.identity,
                tenant=self.tenant_id,
                client_id=self.client_id,
                account=self.account,
            ),
        )
        store = EncryptedFileStore(path=self.path, cipher=cipher)
        return guarded(store, state_dir=self.state_dir, identity=self.identity)
