"""Detecting a token cache rolled back to an older copy of itself (issue 11, item 4).

Every save raises the cache's ``generation`` by one; it travels inside the envelope, so with a
cache key it is sealed and authenticated with the refresh token (AES-GCM). The last generation
this installation saved or opened is remembered in the state directory
(``<state_dir>/cache-generations/<identity>``, written like every other secret file: 0600 in a
0700 directory patwarden refuses if another user owns or may write it). A cache whose generation is
below that record is an older copy put back — a restored backup of the cache file, an older Key
Vault version set again — and is refused (:class:`CacheRolledBack`).

Limits (docs/security.md, "Token cache"): whoever can write the state directory too can put back
the record with the cache; a runner without a persistent state directory has no record, so it
trusts the first generation it sees; a plaintext Key Vault cache carries its generation
unauthenticated. Caches written before generations existed are generation 0 and open (a note
is logged) until the first save.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from pathlib import Path

from patwarden.errors import DOCS, AuthError
from patwarden.identity.account import CacheEnvelope
from patwarden.identity.cache_crypto import CacheCipher
from patwarden.identity.cache_store import CacheStore, write_private_file

log = logging.getLogger(__name__)
GENERATIONS_DIR = "cache-generations"


class CacheRolledBack(AuthError):
    """The stored cache is older than one this installation already saved or opened."""


class RollbackGuard:
    """A :class:`CacheStore` stamping each save with the next generation, refusing older ones."""

    def __init__(self, inner: CacheStore, *, record: Path) -> None:
        self.inner = inner
        self.record = record
        self._loaded = 0

    def __repr__(self) -> str:
        return f"RollbackGuard({self.inner!r}, record={str(self.record)!r})"

    @property
    def description(self) -> str:
        """Where the cache lives (the inner store's description)."""
        return self.inner.description

    @property
    def cipher(self) -> CacheCipher | None:
        """The inner store's cipher, if it has one (``login --export`` seals with it)."""
        cipher = getattr(self.inner, "cipher", None)
        return cipher if isinstance(cipher, CacheCipher) else None

    def locked(self) -> contextlib.AbstractContextManager[None]:
        """The inner store's lock (held around load → refresh → save)."""
        return self.inner.locked()

    def seen(self) -> int:
        """The last generation recorded for this cache (0: none yet)."""
        try:
            return int(self.record.read_text(encoding="ascii").strip() or 0)
        except FileNotFoundError:
            return 0
        except (OSError, ValueError, UnicodeDecodeError):
            log.warning("the cache generation record %s is unreadable; ignoring it", self.record)
            return 0

    def load(self) -> CacheEnvelope | None:
        """The stored envelope, refused when older than the recorded generation.

        Raises:
            CacheRolledBack: the cache's generation is below the recorded one.
        """
        envelope = self.inner.load()
        if envelope is None:
            return None
        seen = self.seen()
        if envelope.generation < seen:
            raise CacheRolledBack(
                f"the token cache in {self.description} is generation {envelope.generation}, "
                f"but generation {seen} was already saved or opened here: an older copy of the "
                "cache was put back (a restored backup, an older Key Vault version set again)",
                hint=(
                    "find out who replaced it; then run `patwarden login` for this identity to "
                    f"write a new cache (or remove {self.record} if you restored it on purpose)"
                ),
                docs=f"{DOCS}/security.md#token-cache",
            )
        if envelope.generation == 0:
            log.info(
                "the token cache in %s has no generation yet (written by an older patwarden); "
                "it gets one on the next save",
                self.description,
            )
        elif envelope.generation > seen:
            self._remember(envelope.generation)
        self._loaded = envelope.generation
        return envelope

    def save(self, envelope: CacheEnvelope) -> None:
        """Save ``envelope`` as the next generation and record it."""
        generation = max(self.seen(), self._loaded, envelope.generation) + 1
        self.inner.save(dataclasses.replace(envelope, generation=generation))
        self._loaded = generation
        self._remember(generation)

    def delete(self) -> bool:
        """Remove the cache; the record stays, so the next login's cache continues above it."""
        return self.inner.delete()

    def _remember(self, generation: int) -> None:
        write_private_file(self.record, f"{generation}\n".encode("ascii"))


def guarded(store: CacheStore, *, state_dir: Path, identity: str) -> RollbackGuard:
    """Wrap *store* with the generation record of *identity* under *state_dir*."""
    return RollbackGuard(store, record=state_dir / GENERATIONS_DIR / identity)
