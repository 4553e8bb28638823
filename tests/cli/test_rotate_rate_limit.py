"""`patwarden rotate` under the emulator's Azure DevOps rate limit: paced, never throttled.

A small fleet against a small budget (a few seconds): the real CLI's workers share one pacer for
the rotator, so the run gets no 429 and no whole-window stall, also with the client's clock
seconds behind the service's.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest

from tests.conftest import RunningEmulator
from tests.support.clock import OFFSET, OFFSET_ENV, PINNED_CLI
from tests.support.configs import token_entry, write_config
from tests.support.device_codes import login_in_process

pytestmark = pytest.mark.slow

TOKENS = 12  # two Azure DevOps requests each (create, verify), and one listing
LIMIT = 12  # per window: the fleet needs two windows' worth
WINDOW_S = 2.0


def rotate_with_clock_behind(config: Path, behind_s: float) -> subprocess.CompletedProcess[str]:
    """`patwarden rotate` with its clock (the AppContext's) *behind_s* seconds behind ours."""
    return subprocess.run(
        [
            sys.executable,
            str(PINNED_CLI),
            "rotate",
            "-o",
            "json",
            "--concurrency",
            "8",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, OFFSET_ENV: repr(OFFSET.total_seconds() - behind_s)},
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("behind_s", [0.0, 3.0])
def test_a_fleet_is_paced_under_the_budget_without_429_or_stall(
    emulator: RunningEmulator, tmp_path: Path, behind_s: float
) -> None:
    tokens = {
        f"paced-{i}": token_entry(emulator, tmp_path, f"paced-{i}", group=False)
        for i in range(TOKENS)
    }
    config = write_config(emulator, tmp_path, tokens=tokens)
    login_in_process(emulator, config)
    limits = {"enabled": True, "limit": LIMIT, "window_seconds": WINDOW_S}
    emulator.admin("PUT", "/rate-limit", json=limits)
    since = emulator.admin("GET", "/requests?since=0").json()["last_seq"]

    run = rotate_with_clock_behind(config, behind_s)

    assert run.returncode == 0, run.stderr + run.stdout[-2000:]
    assert json.loads(run.stdout)["summary"] == {"rotated": TOKENS}
    logged = emulator.admin("GET", f"/requests?since={since}").json()["requests"]
    devops = [e for e in logged if e["path"].startswith(("/devops/", "/vssps/"))]
    assert [e for e in devops if e["status"] == 429] == []
    assert len(devops) >= 2 * TOKENS
    times = [dt.datetime.fromisoformat(e["time"]).timestamp() for e in devops]
    assert times[-1] - times[0] >= WINDOW_S  # the budget did hold it back
    # Paced from the first PAT created on (before it the run sets itself up): no stall of the
    # whole window, as when every worker waited for X-RateLimit-Reset.
    first_create = next(i for i, e in enumerate(devops) if e["method"] == "POST")
    assert max(b - a for a, b in pairwise(times[first_create:])) < WINDOW_S / 2
