"""A second local user for attack tests (docs/security.md): the attacker next to patwarden.

Creating one needs root (``useradd``); the suite runs as root in CI and in the dev container.
Without root, or without ``useradd``, the tests that need one are skipped with that reason. The user
is removed again when the test ends, and so is the shared directory it attacked through.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class LocalUser:
    """Another account on this machine, with no privileges."""

    name: str
    uid: int
    gid: int

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """Run *argv* as this user (no shell unless *argv* asks for one); fail loudly."""
        return subprocess.run(  # the test's own fixed commands
            list(argv),
            user=self.uid,
            group=self.gid,
            extra_groups=[],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
            env={"PATH": "/usr/bin:/bin", "HOME": "/"},
        )


def _user_tool(*argv: str) -> None:
    # useradd/userdel lock /etc/passwd; another xdist worker may hold it for a moment.
    for attempt in range(20):
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode == 0:
            return
        if "lock" not in done.stderr.lower() or attempt == 19:
            raise RuntimeError(f"{argv[0]} failed: {done.stderr.strip()}")
        time.sleep(0.2)


@contextmanager
def second_local_user() -> Iterator[LocalUser]:
    """Create a throwaway unprivileged user; skip the test when that is not possible."""
    if os.geteuid() != 0:
        pytest.skip("attack tests need a second local user: run as root so they can useradd one")
    if shutil.which("useradd") is None or shutil.which("userdel") is None:
        pytest.skip("attack tests need a second local user: useradd/userdel are not installed")
    name = f"pwattack{secrets.token_hex(3)}"
    _user_tool("useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name)
    try:
        import pwd

        entry = pwd.getpwnam(name)
        yield LocalUser(name=name, uid=entry.pw_uid, gid=entry.pw_gid)
    finally:
        _user_tool("userdel", name)


@contextmanager
def shared_directory() -> Iterator[Path]:
    """A sticky world-writable directory like ``/tmp`` (the test's own, removed afterwards).

    pytest's ``tmp_path`` is 0700 root: the attacker could not even reach it.
    """
    path = Path(tempfile.mkdtemp(prefix="patwarden-shared-"))
    try:
        path.chmod(0o1777)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
