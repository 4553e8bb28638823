"""The malloc arena limit of threaded runs (its effect on peak RSS is in docs/performance.md)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from patwarden.app.memory import limit_malloc_arenas


def test_glibc_takes_the_limit_in_a_fresh_process() -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("mallopt is glibc's")
    probe = "from patwarden.app.memory import limit_malloc_arenas as f; print(f())"
    env = {"PATH": "/usr/bin:/bin"}
    ran = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert ran.stdout.strip() == "True", ran.stderr


def test_the_operators_malloc_arena_max_stands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False
