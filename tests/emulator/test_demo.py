"""`patwarden demo`: zero setup, a narrated rotation against its own emulator, exit 0."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow

# The emulator's PAT format (docs/emulator/devops.md): pwemu_, 52 alphanumerics, AZDO, 28 more.
PAT_SHAPE = re.compile(r"pwemu_[A-Za-z0-9]{52}AZDO[A-Za-z0-9]{28}")


def test_demo_runs_end_to_end_without_setup(tmp_path: object) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "patwarden", "demo"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "COLUMNS": "160"},
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert elapsed < 60
    out = result.stdout
    for step in range(1, 8):
        assert f"[{step}/7]" in out
    assert out.count("holds the PAT; connectionData answers HTTP 200") == 6  # 3 sinks, twice
    assert "✓ the previous PAT (within its grace period) still authenticates (HTTP 200)" in out
    assert "✓ the previous PAT is refused (HTTP 401)" in out
    assert "✓ the current PAT still authenticates (HTTP 200)" in out
    assert "revoked_previous" in out
    assert "✗" not in out
    assert PAT_SHAPE.search(out + result.stderr) is None, "a PAT value was printed"
    assert out.rstrip().splitlines()[-1].startswith("Done in ")
