"""The per-token lock files of the SQLite store: one exclusive ``flock`` per token.

A run takes one of these for every token it looks at, due or not, so its cost is per token of
every run. On POSIX it is a few system calls on a 0600 file (created in a 0700 directory on first
use): ``flock`` locks belong to the open file description, so two threads of one process, like
two processes, exclude each other, and the kernel drops the lock when its holder dies. Where
there is no ``fcntl`` (or the file system refuses ``flock``), :mod:`filelock` does it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from patwarden.rotation.ports import StateLocked

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

__all__ = ["POLL_SECONDS", "held", "token_lock"]

POLL_SECONDS = 0.05  # how often a waiting run tries again (as filelock does)
_BUSY = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES)


@contextmanager
def token_lock(directory: Path, name: str, *, timeout: float, where: Path) -> Iterator[None]:
    """Hold token *name*'s lock file in *directory* (the lock of the state at *where*).

    Raises:
        StateLocked: another run held the lock for longer than *timeout* seconds.
    """
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    with held(directory / f"{digest}.lock", timeout=timeout) as got:
        if not got:
            raise StateLocked(
                f"Token {name!r} is locked by another patwarden run on {where}.",
                hint="Let that run finish; this run left the token alone.",
            )
        yield


@contextmanager
def held(path: Path, *, timeout: float) -> Iterator[bool]:
    """Hold the exclusive lock on *path* for the ``with`` block; yield False (holding nothing)
    when another holder kept it for longer than *timeout* seconds."""
    if fcntl is None:
        with _filelock(path, timeout=timeout) as got:
            yield got
        return
    fd = _open(path)
    try:
        got = _flock(fd, timeout)
    except OSError:  # a file system without flock
        os.close(fd)
        with _filelock(path, timeout=timeout) as got:
            yield got
        return
    try:
        yield got
    finally:
        os.close(fd)  # closing the only descriptor of the open file releases the lock


def _open(path: Path) -> int:
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(path, flags, 0o600)
    except FileNotFoundError:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return os.open(path, flags, 0o600)


def _flock(fd: int, timeout: float) -> bool:
    deadline = time.monotonic() + max(timeout, 0.0)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in _BUSY:
                raise
        else:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(POLL_SECONDS, left))


@contextmanager
def _filelock(path: Path, *, timeout: float) -> Iterator[bool]:
    import filelock

    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = filelock.FileLock(path, timeout=timeout, mode=0o600)
    try:
        lock.acquire()
    except filelock.Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()
