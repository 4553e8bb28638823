"""The rotator's token cache kept as a Key Vault secret, for stateless runners without a disk.

Limits (documented in docs/identities.md#key-vault-cache): Key Vault has no lock, so two runners
refreshing at the very same moment both write a version. This store does the best it can: just
before writing it re-reads the latest version and, if another runner stored a *newer* renewal in
the meantime, keeps that one instead of overwriting it; after writing it reads back what is
current. Whichever version wins, the other runner's refresh token also stays valid — Entra does not
revoke a refresh token when it issues the next one (contract §4.5) — so a lost race costs nothing.
Within one process a thread lock serialises calls.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from patwarden.errors import DOCS, AuthError
from patwarden.identity.account import CacheEnvelope
from patwarden.identity.cache_crypto import CacheCipher
from patwarden.identity.keyvault import key_vault_failure

if TYPE_CHECKING:
    from azure.keyvault.secrets import SecretClient

log = logging.getLogger(__name__)
CONTENT_TYPE_PLAIN = "application/x-patwarden-token-cache"
CONTENT_TYPE_SEALED = "application/x-patwarden-token-cache+aes256gcm"


class KeyVaultCacheStore:
    """A token cache in one Key Vault secret, encrypted too when a key is configured."""

    def __init__(
        self,
        *,
        client_factory: Callable[[], SecretClient],
        vault_url: str,
        secret: str,
        identity: str,
        cipher: CacheCipher | None,
    ) -> None:
        self._client_factory = client_factory
        self._client: SecretClient | None = None
        self.vault_url = vault_url
        self.secret = secret
        self.identity = identity
        self.cipher = cipher
        self._lock = threading.RLock()
        self._loaded_version: str | None = None

    def __repr__(self) -> str:
        return f"KeyVaultCacheStore(vault_url={self.vault_url!r}, secret={self.secret!r})"

    @property
    def description(self) -> str:
        """``Key Vault secret <name> in <vault>``."""
        return f"Key Vault secret {self.secret!r} in {self.vault_url}"

    @property
    def client(self) -> SecretClient:
        """The SecretClient, built on first use."""
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise within this process (Key Vault offers no cross-process lock)."""
        with self._lock:
            yield

    def _fail(self, err: Exception, action: str) -> AuthError:
        return key_vault_failure(
            err, action=action, vault_url=self.vault_url, secret=self.secret, identity=self.identity
        )

    def _fetch(self) -> tuple[CacheEnvelope | None, str | None]:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            found = self.client.get_secret(self.secret)
        except ResourceNotFoundError:
            return None, None
        except AzureError as err:
            raise self._fail(err, "read") from None
        if not found.value:
            return None, found.properties.version
        return self._decode(found.value, found.properties.content_type), found.properties.version

    def _decode(self, value: str, content_type: str | None) -> CacheEnvelope:
        where = self.description
        if value.lstrip().startswith("{"):
            if self.cipher is not None:
                # Anyone who may write the secret could swap in a plaintext cache of their own
                # account: with a key configured, only a sealed cache bound to us is accepted.
                raise AuthError(
                    f"{where} holds an unencrypted token cache, but a cache key is configured: "
                    "it was written without the key or swapped in by someone else",
                    hint=(
                        "run `patwarden login` again for the identity whose cache this is, to "
                        "replace it with an encrypted one (and check who may write that secret)"
                    ),
                    docs=f"{DOCS}/security.md#token-cache",
                )
            return CacheEnvelope.from_bytes(value.encode("utf-8"), where=where)
        if self.cipher is None:
            raise AuthError(
                f"{where} is encrypted (content type {content_type!r}) but no cache key is "
                "configured",
                hint="set cache.key to the key it was written with",
                docs=f"{DOCS}/identities.md#cache-key",
            )
        try:
            sealed = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            sealed = b""
        return CacheEnvelope.from_bytes(self.cipher.open(sealed, where=where), where=where)

    def _encode(self, envelope: CacheEnvelope) -> tuple[str, str]:
        if self.cipher is None:
            return envelope.to_bytes().decode("utf-8"), CONTENT_TYPE_PLAIN
        return base64.b64encode(self.cipher.seal(envelope.to_bytes())).decode(
            "ascii"
        ), CONTENT_TYPE_SEALED

    def load(self) -> CacheEnvelope | None:
        """The latest version of the secret, or None if it does not exist or is empty.

        Raises:
            AuthError: Key Vault refused or could not be reached; the cache cannot be decrypted.
        """
        envelope, version = self._fetch()
        self._loaded_version = version
        return envelope

    def save(self, envelope: CacheEnvelope) -> None:
        """Write a new version, unless another runner stored a newer renewal since :meth:`load`.

        Raises:
            AuthError: Key Vault refused the write or could not be reached.
        """
        from azure.core.exceptions import AzureError

        current, version = self._fetch()
        if version != self._loaded_version and _is_newer(current, envelope):
            log.info(
                "%s was renewed by another runner meanwhile; keeping its newer version",
                self.description,
            )
            self._loaded_version = version
            return
        value, content_type = self._encode(envelope)
        try:
            stored = self.client.set_secret(self.secret, value, content_type=content_type)
        except AzureError as err:
            raise self._fail(err, "write") from None
        self._loaded_version = stored.properties.version
        # Read back: if another runner wrote right after us, its (newer) version is current now.
        _, latest = self._fetch()
        if latest != stored.properties.version:
            log.info("%s was written again by another runner right after us", self.description)
            self._loaded_version = latest

    def delete(self) -> bool:
        """Write an empty version and disable every older one (they hold older refresh tokens).

        Key Vault soft-delete would block the next login's write, so the secret itself stays.

        Raises:
            AuthError: Key Vault refused or could not be reached.
        """
        from azure.core.exceptions import AzureError

        existing, _ = self._fetch()
        try:
            latest = self.client.set_secret(self.secret, "", content_type=CONTENT_TYPE_PLAIN)
            for props in self.client.list_properties_of_secret_versions(self.secret):
                if props.version != latest.properties.version and props.enabled:
                    self.client.update_secret_properties(self.secret, props.version, enabled=False)
        except AzureError as err:
            raise self._fail(err, "clear") from None
        return existing is not None


def _is_newer(stored: CacheEnvelope | None, ours: CacheEnvelope) -> bool:
    """Whether ``stored`` records a later renewal (or login) than ``ours``."""
    if stored is None or stored.account is None or ours.account is None:
        return False
    mine: Any = (ours.account.logged_in_at, ours.account.last_renewed_at)
    theirs: Any = (stored.account.logged_in_at, stored.account.last_renewed_at)
    return bool(theirs > mine)
