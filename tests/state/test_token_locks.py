"""The per-token lock files: exclusive across processes and threads, private, released."""

from __future__ import annotations

import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import filelock
import pytest

from patwarden.state import token_locks


def test_the_lock_file_and_its_directory_are_created_private(tmp_path: Path) -> None:
    path = tmp_path / "state.db.locks" / "abc.lock"
    with token_locks.held(path, timeout=1) as got:
        assert got
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_a_second_holder_in_the_same_process_waits_then_gives_up(tmp_path: Path) -> None:
    path = tmp_path / "t.lock"
    with token_locks.held(path, timeout=1) as first:
        assert first
        with token_locks.held(path, timeout=0.1) as second:
            assert not second
    with token_locks.held(path, timeout=0) as again:  # released when the block ended
        assert again


def test_the_lock_is_released_when_the_block_raises(tmp_path: Path) -> None:
    path = tmp_path / "t.lock"
    with pytest.raises(RuntimeError), token_locks.held(path, timeout=1):
        raise RuntimeError("boom")
    with token_locks.held(path, timeout=0) as got:
        assert got


def test_another_process_holding_the_file_excludes_us_until_it_ends(tmp_path: Path) -> None:
    """Another process (here: filelock, what earlier patwarden versions used) holds the lock."""
    path = tmp_path / "t.lock"
    script = textwrap.dedent(
        f"""
        import sys, filelock
        lock = filelock.FileLock({str(path)!r}); lock.acquire()
        print("held", flush=True); sys.stdin.readline()
        """
    )
    pipe = subprocess.PIPE
    with subprocess.Popen([sys.executable, "-c", script], stdin=pipe, stdout=pipe, text=True) as p:
        assert p.stdin is not None
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "held"
        with token_locks.held(path, timeout=0.2) as got:
            assert not got
        p.stdin.close()
        p.wait(timeout=10)
    with token_locks.held(path, timeout=5) as got:
        assert got
        with pytest.raises(filelock.Timeout):  # and we exclude filelock's holders
            filelock.FileLock(path, timeout=0.1).acquire()
