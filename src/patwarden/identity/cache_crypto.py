"""Encryption of the persisted token cache: AES-256-GCM with a key the operator controls.

A sealed cache is ``MAGIC || nonce(12) || ciphertext+tag``. Keys are 32 random bytes, written as
URL-safe base64 (44 characters) — make one with :func:`generate_cache_key` or
``patwarden config cache-key``.

Associated data (authenticated, not encrypted) binds a blob to what it is for:

- ``PWCACHE2`` blobs (written by a cipher with a ``binding``): the associated data is
  ``b"PWCACHE2" + binding``, where ``binding`` is :func:`identity_binding` of the identity the
  cache belongs to (identity name, tenant, client id, account). A cache of another identity that
  shares the key, copied or swapped in, fails to open (:class:`CacheDecryptError`).
- ``PWCACHE1`` blobs (no binding; what :meth:`CacheCipher.seal` writes when the cipher has none,
  and every cache before this version): the associated data is the magic alone. A bound cipher
  still opens them (a warning is logged) and writes ``PWCACHE2`` on the next save.

:meth:`CacheCipher.seal` and :meth:`CacheCipher.open` keep their signatures: callers that export or
import a cache (``patwarden login --export``) pass the same ``binding`` when they build the cipher,
or none for a portable blob.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os

from patwarden.errors import DOCS, AuthError, ConfigError
from patwarden.secret import Secret

log = logging.getLogger(__name__)
MAGIC = b"PWCACHE1"  # unbound blobs (associated data: the magic alone)
MAGIC_BOUND = b"PWCACHE2"  # bound blobs (associated data: the magic + the identity binding)
_NONCE_BYTES = 12
KEY_DOCS = f"{DOCS}/identities.md#cache-key"


class CacheKeyInvalid(ConfigError):
    """The configured cache key is not a 32-byte URL-safe base64 key."""


class CacheDecryptError(AuthError):
    """The cache cannot be decrypted: wrong key, altered file, or not a patwarden cache."""


def identity_binding(
    *, identity: str, tenant: str | None, client_id: str | None, account: str | None
) -> bytes:
    """The associated data that ties a sealed cache to one identity (canonical JSON, UTF-8).

    ``account`` is the username the config names (None when it does not pin one).
    """
    fields = {"identity": identity, "tenant": tenant, "client_id": client_id, "account": account}
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode("utf-8")


def generate_cache_key() -> Secret:
    """A fresh random 256-bit cache key, URL-safe base64 encoded."""
    return Secret(base64.urlsafe_b64encode(os.urandom(32)).decode("ascii"))


def decode_cache_key(key: Secret, *, source: str) -> bytes:
    """Turn a key as stored (base64 text) into 32 raw bytes; ``source`` names where it came from.

    Raises:
        CacheKeyInvalid: the text is not URL-safe base64 of exactly 32 bytes.
    """
    text = key.reveal().strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise CacheKeyInvalid(
            f"the token-cache key from {source} is not a valid key (expected 32 bytes, "
            "URL-safe base64)",
            hint="create one with `patwarden config cache-key` and store it there",
            docs=KEY_DOCS,
        )
    return raw


class CacheCipher:
    """Seals and opens cache blobs with one AES-256-GCM key. The key never appears in reprs."""

    __slots__ = ("_key", "binding", "source")

    def __init__(self, *, key: bytes, source: str, binding: bytes = b"") -> None:
        if len(key) != 32:
            raise ValueError("AES-256-GCM needs a 32-byte key")
        self._key = key
        self.source = source
        self.binding = binding

    def __repr__(self) -> str:
        return f"CacheCipher(source={self.source!r}, key=***)"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("CacheCipher holds a key and cannot be pickled")

    def seal(self, plaintext: bytes) -> bytes:
        """Encrypt and authenticate ``plaintext``."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = os.urandom(_NONCE_BYTES)
        if not self.binding:
            return MAGIC + nonce + AESGCM(self._key).encrypt(nonce, plaintext, MAGIC)
        aad = MAGIC_BOUND + self.binding
        return MAGIC_BOUND + nonce + AESGCM(self._key).encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes, *, where: str) -> bytes:
        """Decrypt ``sealed`` (read from ``where``).

        Raises:
            CacheDecryptError: not a patwarden cache, or the key does not match / data was altered.
        """
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        magic = sealed[: len(MAGIC)]
        if magic not in (MAGIC, MAGIC_BOUND) or len(sealed) < len(MAGIC) + _NONCE_BYTES + 16:
            raise CacheDecryptError(
                f"{where} is not an encrypted patwarden token cache",
                hint="point the cache setting at the right place, or log in again to recreate it",
                docs=KEY_DOCS,
            )
        aad = MAGIC_BOUND + self.binding if magic == MAGIC_BOUND else MAGIC
        if magic == MAGIC and self.binding:
            log.warning(
                "the token cache %s is not bound to its identity yet (written by an older "
                "patwarden); it will be on the next write",
                where,
            )
        nonce = sealed[len(MAGIC) : len(MAGIC) + _NONCE_BYTES]
        try:
            return AESGCM(self._key).decrypt(nonce, sealed[len(MAGIC) + _NONCE_BYTES :], aad)
        except InvalidTag:
            raise CacheDecryptError(
                f"cannot decrypt the token cache {where} with the key from {self.source}: "
                "the key is not the one it was written with, the cache belongs to another "
                "identity (copied or swapped in), or it was altered",
                hint=(
                    "restore the key used at login, or run `patwarden logout` and `patwarden "
                    "login` to start over with the current key"
                ),
                docs=KEY_DOCS,
            ) from None
