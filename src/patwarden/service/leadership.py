"""One instance per state: the leadership lock of ``patwarden serve``.

The leader holds an exclusive :mod:`filelock` lock on ``<state file>.leader.lock`` for as long as
it runs, and writes who it is (pid, host, since) beside it (``.leader.json``, 0600) so a second
instance can say whom it waits for. A second ``serve`` on the same state stands by and retries;
the lock is released by the operating system when the leader dies, even by SIGKILL. ``rotate``
on the same state waits on the per-token locks of the state store, so no token rotates twice.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import filelock

__all__ = ["Leadership"]

_RETRY = timedelta(seconds=5)


class Leadership:
    """The leadership lock of the state at *state_path*."""

    def __init__(self, state_path: Path) -> None:
        self.lock_path = state_path.with_name(state_path.name + ".leader.lock")
        self.info_path = state_path.with_name(state_path.name + ".leader.json")
        self._lock = filelock.FileLock(self.lock_path, timeout=0, mode=0o600)

    @property
    def is_leader(self) -> bool:
        """Whether this process holds the lock."""
        return bool(self._lock.is_locked)

    @property
    def epoch(self) -> int | None:
        """No epochs here (:class:`patwarden.rotation.ports.Leadership`): one machine's lock file
        cannot be taken from a live holder, so its stores need no fencing."""
        return None

    @property
    def retry_interval(self) -> timedelta:
        """A standby retries every 5 s (the OS frees the lock when the leader dies)."""
        return _RETRY

    def try_acquire(self, *, now: datetime) -> bool:
        """Take the lock if nobody holds it; return whether this process leads now."""
        if self.is_leader:
            return True
        self.lock_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=0)
        except filelock.Timeout:
            return False
        self._write_info(now)
        return True

    def holder(self) -> dict[str, Any] | None:
        """Who leads (pid, host, since) as the leader wrote it; None when unknown."""
        try:
            data = json.loads(self.info_path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def describe_holder(self) -> str:
        """``pid 1234 on host-a since 2026-12-04T08:00:00+00:00`` (or ``another process``)."""
        holder = self.holder()
        if not holder:
            return "another process"
        return f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('since')}"

    def release(self) -> None:
        """Give up leadership (the lock is also released when the process dies)."""
        if self.is_leader:
            self._lock.release(force=True)

    def _write_info(self, now: datetime) -> None:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": now.isoformat()}
        temp = self.info_path.with_name(self.info_path.name + f".{os.getpid()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(info, handle)
        os.replace(temp, self.info_path)
