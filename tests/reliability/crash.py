"""Killing a real ``patwarden`` process in the middle of a local write, with no hook in patwarden.

HTTP steps are reached by parking a request at the emulator (``crash_support``); local writes —
a file sink's renames, the token cache's replace, SQLite's writes to the state store — have no
request to park. :func:`run_until_syscall` runs the process under ``strace`` with fault
injection: SIGKILL on entry to the N-th call of the given system calls, so the call never
happens and everything before it did. :func:`trace_syscalls` runs once without killing and
returns those calls in order, to know how many points there are and what each one is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.reliability.invariants import Run
from tests.reliability.world import World

RENAMES = ("rename", "renameat", "renameat2")
SQLITE_WRITES = ("pwrite64",)


@dataclass(frozen=True)
class Killed:
    """How one run under strace ended."""

    killed: bool  # False: it finished before the N-th call
    code: int


def strace_available() -> bool:
    """Whether strace exists and may trace here (ptrace can be forbidden in containers)."""
    if shutil.which("strace") is None:
        return False
    probe = subprocess.run(
        ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=getpid", "true"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def strace_skip_reason() -> str | None:
    """Why the strace crash tests cannot run here, or None. Under CI (``CI=true``) they must
    run: ``.ci/run`` installs strace, so a missing or forbidden strace fails instead of skipping."""
    if strace_available() or os.environ.get("CI") == "true":
        return None
    return "strace cannot trace processes here (install Debian's strace; CI requires it)"


# The interpreter writes no bytecode cache (its renames land outside the world's directory and
# vary from run to run), so the N-th traced call of a reference run is the N-th of a killed one.
_NO_BYTECODE = {"PYTHONDONTWRITEBYTECODE": "1"}


def _strace(syscalls: Sequence[str], *extra: str) -> list[str]:
    names = ",".join(syscalls)
    # -y: a call on a file descriptor names its file, so a test can tell where each call lands.
    return ["strace", "-f", "-qq", "-y", "-e", f"trace={names}", *extra]


def trace_syscalls(
    world: World, args: Sequence[str], *, syscalls: Sequence[str]
) -> tuple[Run, list[str]]:
    """Run ``patwarden ARGS`` to the end under strace; return the run and each call's line."""
    log = world.root / "out" / f"strace-{world.runs + 1}.log"
    process = world.start(*args, env=_NO_BYTECODE, wrapper=[*_strace(syscalls, "-o", str(log))])
    code = process.wait(timeout=180)
    stdout, stderr = world.output(process)
    calls = [
        line
        for line in Path(log).read_text().splitlines()
        if any(f"{name}(" in line for name in syscalls)
    ]
    log.unlink()  # it quotes write buffers: never leave it for the leak scan to trip over
    return Run(code, stdout, stderr), calls


def run_until_syscall(
    world: World, args: Sequence[str], *, syscalls: Sequence[str], nth: int
) -> Killed:
    """Run ``patwarden ARGS`` under strace; SIGKILL it on entry to the ``nth`` matching call."""
    names = ",".join(syscalls)
    wrapper = _strace(syscalls, "-o", "/dev/null", "-e", f"inject={names}:signal=KILL:when={nth}")
    process = world.start(*args, env=_NO_BYTECODE, wrapper=wrapper)
    code = process.wait(timeout=180)
    return Killed(killed=code in (-9, 137), code=code)
