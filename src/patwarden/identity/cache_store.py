"""Where the rotator's token cache is persisted: the :class:`CacheStore` protocol, file store.

Refresh tokens roll on every use, so concurrent runners must never lose an update. Callers hold
:meth:`CacheStore.locked` around the whole read-refresh-write sequence; the file store backs it
with an inter-process lock file beside the cache, so two processes refreshing at once run one after
the other and both end with the newest token. Writes are atomic (a 0600 temp file, then
``os.replace``), so a crash never leaves a half-written cache.
"""

from __future__ import annotations

import contextlib
import logging
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from patwarden.errors import DOCS, StateError
from patwarden.identity.account import CacheEnvelope
from patwarden.identity.cache_crypto import CacheCipher

log = logging.getLogger(__name__)
DEFAULT_LOCK_TIMEOUT = 120.0


class CacheStore(Protocol):
    """Persistence for one identity's :class:`CacheEnvelope`."""

    @property
    def description(self) -> str:
        """Where the cache lives, for messages (never contains a secret)."""
        ...

    def locked(self) -> contextlib.AbstractContextManager[None]:
        """Hold this for the whole load → refresh → save sequence.

        Raises:
            StateError: the lock could not be taken in time.
        """
        ...

    def load(self) -> CacheEnvelope | None:
        """The stored envelope, or None when nothing is stored yet.

        Raises:
            patwarden.errors.AuthError: the cache cannot be decrypted or parsed.
        """
        ...

    def save(self, envelope: CacheEnvelope) -> None:
        """Persist ``envelope``, replacing what is stored."""
        ...

    def delete(self) -> bool:
        """Remove the stored cache; return whether there was one."""
        ...


def write_private_file(path: Path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data`` (0600) in a private directory created 0700.

    One helper for every secret write (:func:`patwarden.sinks.safe_files.write_private_file`):
    a random ``O_EXCL | O_NOFOLLOW`` temp name, and a directory another user owns or may write
    is refused.

    Raises:
        UnsafeDirectory: the directory is owned or writable by another user.
        OSError: nothing was replaced.
    """
    # Imported here: the sinks package is heavy (pydantic) and `patwarden --help` imports this.
    from patwarden.sinks import safe_files

    safe_files.write_private_file(path, data, purpose="token cache directory")


class EncryptedFileStore:
    """An AES-GCM encrypted cache file (0600) with an inter-process ``<file>.lock`` beside it."""

    def __init__(
        self, *, path: Path, cipher: CacheCipher, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    ) -> None:
        self.path = path
        self.cipher = cipher
        self.lock_path = path.with_name(path.name + ".lock")
        self.lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return f"EncryptedFileStore(path={str(self.path)!r})"

    @property
    def description(self) -> str:
        """``file <path>``."""
        return f"file {self.path}"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Take the inter-process lock (waits up to ``lock_timeout`` seconds).

        Raises:
            StateError: another process held the lock for longer than ``lock_timeout``.
        """
        from filelock import FileLock, Timeout

        from patwarden.sinks import safe_files

        safe_files.ensure_private_directory(self.path.parent, purpose="token cache directory")
        lock = FileLock(self.lock_path, timeout=self.lock_timeout, mode=0o600)
        try:
            lock.acquire()
        except Timeout:
            raise StateError(
                f"the token cache {self.path} is locked by another patwarden process "
                f"(waited {self.lock_timeout:.0f}s for {self.lock_path})",
                hint=(
                    "wait for the other run to finish; if none is running, the lock is stale "
                    "only if its holder hangs — find it with `fuser` and stop it"
                ),
                docs=f"{DOCS}/identities.md#cache-locked",
            ) from None
        try:
            yield
        finally:
            lock.release()

    def load(self) -> CacheEnvelope | None:
        """Read and decrypt the cache file; None when it does not exist.

        Raises:
            CacheDecryptError: wrong key or altered file.
            CacheFormatError: not a cache this version understands.
        """
        try:
            sealed = self.path.read_bytes()
        except FileNotFoundError:
            return None
        mode = stat.S_IMODE(self.path.stat().st_mode)
        if mode & 0o077:
            log.warning(
                "token cache %s has mode %o; it should be 0600 (chmod 600 it)", self.path, mode
            )
        plaintext = self.cipher.open(sealed, where=str(self.path))
        return CacheEnvelope.from_bytes(plaintext, where=str(self.path))

    def save(self, envelope: CacheEnvelope) -> None:
        """Encrypt and atomically replace the cache file (mode 0600)."""
        write_private_file(self.path, self.cipher.seal(envelope.to_bytes()))

    def delete(self) -> bool:
        """Remove the cache file (the lock file stays: removing it could race another process)."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True
