"""SIGKILL `patwarden rotate` inside its local writes: file-sink renames and state-store writes.

The HTTP steps of the crash matrix park a request at the emulator; these points have none, so
``strace`` kills the process on entry to the N-th ``rename`` (every rename of a rotation: the file
sink's kept previous copy, its new content and its metadata sidecar) or to a sample of SQLite's
``pwrite64`` calls on the state store. Then `rotate` runs again and once more past the orphan
margin (and, for the files, ten minutes later: a killed write's temp file is cleared once it is
known not to be live), and the invariants are checked through the emulator and the files
(``World``); the leak scan also catches a temp file full of PAT left behind by a killed write.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.conftest import RunningEmulator
from tests.reliability.crash import (
    RENAMES,
    SQLITE_WRITES,
    run_until_syscall,
    strace_skip_reason,
    trace_syscalls,
)
from tests.reliability.figures import record
from tests.reliability.leaks import LeakScanner
from tests.reliability.world import World

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(strace_skip_reason() is not None, reason=strace_skip_reason() or ""),
]
TOKEN = "local"
ROTATE = ("rotate", "--token", TOKEN, "--force")
STATE_POINTS = 8  # state-store writes sampled (a rotation makes ~100)


def _recover(world: World) -> list[str]:
    """Rerun after a crash, once more past the orphan margin; return what is still wrong."""
    problems = world.serving_problems(TOKEN)  # while nothing runs: what consumers see now
    recovery = world.cli("rotate", "--token", TOKEN)
    time.sleep(1.1)  # rotation.orphan_margin is 1 s in World's config
    _ten_minutes_pass(world.root / "sinks")
    settle = world.cli("rotate", "--token", TOKEN)
    problems += world.settled_problems(TOKEN)
    if settle.code != 0:
        problems.append(
            f"recovery exited {recovery.code}, the settling run {settle.code}: "
            f"{settle.stdout[-1000:]} {settle.stderr[-3000:]}"
        )
    return problems


def _ten_minutes_pass(directory: Path) -> None:
    """Age the sink files: a temp file a killed write left is then known not to be live."""
    then = time.time() - 600
    for path in directory.iterdir():
        os.utime(path, (then, then), follow_symlinks=False)


def _outside(calls: Sequence[str], root: Path) -> list[str]:
    """The traced calls that touch no file of the world's own directory (each crash point is
    counted among every traced call, so one of these would shift every point after it)."""
    return [line[:200] for line in calls if str(root.resolve()) not in line]


def _what(line: str, root: Path) -> str:
    """``rename("…/.x.1f2e.tmp", "…/x.patwarden.json")`` → ``rename → x.patwarden.json``."""
    paths = re.findall(r'"([^"]*)"', line)
    target = Path(paths[-1]).name if paths else line
    return f"rename → {target}" if str(root) in line else f"rename → {target} (outside)"


def _crash_each(
    world: World, syscalls: Sequence[str], points: Sequence[int], describe: Sequence[str]
) -> list[str]:
    failures = []
    for nth, what in zip(points, describe, strict=True):
        killed = run_until_syscall(world, ROTATE, syscalls=syscalls, nth=nth)
        if not killed.killed:
            failures.append(f"{what}: the run was not killed (exit {killed.code})")
            continue
        problems = _recover(world)
        record("crash", point=what, release="syscall", survived=int(not problems), exercised=1)
        if problems:
            failures.append(f"killed at {what}: {problems}")
    return failures


@pytest.mark.parametrize("file_first", [True, False], ids=["file-sink-first", "file-sink-last"])
def test_killing_rotate_at_every_rename_loses_nothing(
    emulator: RunningEmulator, tmp_path: Path, leak_scan: LeakScanner, file_first: bool
) -> None:
    world = World(emulator, tmp_path, leak_scan, tokens=(TOKEN,), file_first=file_first)
    try:
        first = world.cli(*ROTATE)
        assert first.code == 0, first.stdout + first.stderr
        reference, calls = trace_syscalls(world, ROTATE, syscalls=RENAMES)
        assert reference.code == 0, reference.stderr[-2000:]
        assert _outside(calls, world.root) == []  # else the N-th rename is not this world's
        sink = str(world.sink_file(TOKEN))
        assert sum(sink in line for line in calls) >= 3, calls  # previous, content, sidecar

        failures = _crash_each(
            world,
            RENAMES,
            range(1, len(calls) + 1),
            [f"{_what(line, world.root)} (rename {n})" for n, line in enumerate(calls, 1)],
        )

        assert not failures, "\n".join(failures)
    finally:
        world.close()


def test_killing_rotate_in_state_store_writes_loses_nothing(
    emulator: RunningEmulator, tmp_path: Path, leak_scan: LeakScanner
) -> None:
    world = World(emulator, tmp_path, leak_scan, tokens=(TOKEN,))
    try:
        first = world.cli(*ROTATE)
        assert first.code == 0, first.stdout + first.stderr
        reference, calls = trace_syscalls(world, ROTATE, syscalls=SQLITE_WRITES)
        assert reference.code == 0, reference.stderr[-2000:]
        assert _outside(calls, world.root) == []
        assert all("state.db" in line for line in calls), calls
        assert len(calls) > STATE_POINTS, calls
        step = len(calls) / STATE_POINTS
        points = sorted({1, len(calls), *(round(step * i) for i in range(1, STATE_POINTS))})

        failures = _crash_each(
            world,
            SQLITE_WRITES,
            points,
            [f"state-store write {n} of {len(calls)}" for n in points],
        )
        with sqlite3.connect(world.root / "state" / "state.db") as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)

        assert not failures, "\n".join(failures)
    finally:
        world.close()
