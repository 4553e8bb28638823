"""Encryption of the persisted token cache: AES-256-GCM with a key the operator controls.

A sealed cache is ``MAGIC || nonce(12) || ciphertext+tag``; the magic is also the associated data,
so a file from another format or version is refused rather than misread. Keys are 32 random bytes,
written as URL-safe base64 (44 characters) — make one with :func:`generate_cache_key` or
``patwarden config cache-key``.
"""

from __future__ import annotations

import base64
import binascii
import os

from patwarden.errors import DOCS, AuthError, ConfigError
from patwarden.secret import Secret

MAGIC = b"PWCACHE1"
_NONCE_BYTES = 12
KEY_DOCS = f"{DOCS}/identities.md#cache-key"


class CacheKeyInvalid(ConfigError):
    """The configured cache key is not a 32-byte URL-safe base64 key."""


class CacheDecryptError(AuthError):
    """The cache cannot be decrypted: wrong key, altered file, or not a patwarden cache."""


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

    __slots__ = ("_key", "source")

    def __init__(self, *, key: bytes, source: str) -> None:
        if len(key) != 32:
            raise ValueError("AES-256-GCM needs a 32-byte key")
        self._key = key
        self.source = source

    def __repr__(self) -> str:
        return f"CacheCipher(source={self.source!r}, key=***)"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("CacheCipher holds a key and cannot be pickled")

    def seal(self, plaintext: bytes) -> bytes:
        """Encrypt and authenticate ``plaintext``."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = os.urandom(_NONCE_BYTES)
        return MAGIC + nonce + AESGCM(self._key).encrypt(nonce, plaintext, MAGIC)

    def open(self, sealed: bytes, *, where: str) -> bytes:
        """Decrypt ``sealed`` (read from ``where``).

        Raises:
            CacheDecryptError: not a patwarden cache, or the key does not match / data was altered.
        """
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if not sealed.startswith(MAGIC) or len(sealed) < len(MAGIC) + _NONCE_BYTES + 16:
            raise CacheDecryptError(
                f"{where} is not an encrypted patwarden token cache",
                hint="point the cache setting at the right place, or log in again to recreate it",
                docs=KEY_DOCS,
            )
        nonce = sealed[len(MAGIC) : len(MAGIC) + _NONCE_BYTES]
        try:
            return AESGCM(self._key).decrypt(nonce, sealed[len(MAGIC) + _NONCE_BYTES :], MAGIC)
        except InvalidTag:
            raise CacheDecryptError(
                f"cannot decrypt the token cache {where} with the key from {self.source}: "
                "the key is not the one it was written with, or the cache was altered",
                hint=(
                    "restore the key used at login, or run `patwarden logout` and `patwarden "
                    "login` to start over with the current key"
                ),
                docs=KEY_DOCS,
            ) from None
