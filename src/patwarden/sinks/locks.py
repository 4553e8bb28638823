"""Locks for sinks whose write is a read-modify-write of something several tokens share.

A variable group is written whole (read it, change one variable, PUT it back): two tokens that
share a group and rotate at once — two worker threads, or two ``rotate`` processes on the same
state — would each put back the other's variable as it was before, losing a rotation.
:func:`shared_lock` serialises them with a lock file in a directory every run on the same state
uses (``<state_dir>/sink.locks``); :func:`process_lock` is the fallback when no directory is
known (threads of one process only).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from patwarden.sinks.errors import SinkUnavailable

__all__ = ["LOCK_TIMEOUT", "process_lock", "shared_lock"]

LOCK_TIMEOUT = 120.0  # seconds; a variable group write takes well under one
_registry_lock = threading.Lock()
_process_locks: dict[str, threading.Lock] = {}


@contextmanager
def shared_lock(directory: Path, name: str, *, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the lock ``name`` shared by every process and thread that uses ``directory``.

    Raises:
        SinkUnavailable: another run held it for longer than ``timeout`` seconds.
    """
    from filelock import FileLock, Timeout

    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    digest = hashlib.sha256(name.encode()).hexdigest()[:24]
    lock = FileLock(directory / f"{digest}.lock", timeout=timeout, mode=0o600, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        raise SinkUnavailable(
            f"Could not lock {name} within {timeout:g} s: another patwarden run is writing it.",
            hint="Run again when the other rotation has finished.",
        ) from None
    try:
        yield
    finally:
        lock.release()


@contextmanager
def process_lock(name: str) -> Iterator[None]:
    """Hold the lock ``name`` for the threads of this process."""
    with _registry_lock:
        lock = _process_locks.setdefault(name, threading.Lock())
    with lock:
        yield
