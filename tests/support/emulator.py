"""The emulator as a process: start it through the real CLI, stop it, and what its ready file says.

Tests import these from :mod:`tests.conftest`; the benchmarks import them from here, without
pytest (what a benchmark imports counts in the peak RSS it measures of the processes it starts).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from patwarden.tls import ssl_context
from tests.support import clock


@dataclass
class RunningEmulator:
    """A `patwarden emulator` process and what its ready file says."""

    process: subprocess.Popen[bytes]
    ready: dict[str, Any]
    state_dir: Path

    def __getitem__(self, key: str) -> Any:
        return self.ready[key]

    @property
    def ca_bundle(self) -> str:
        return str(self.ready["ca_bundle"])

    def http(self, **kwargs: Any) -> httpx.Client:
        """An httpx client that trusts the emulator's CA (never `verify=False`)."""
        return httpx.Client(verify=ssl_context(self.ca_bundle), timeout=10, **kwargs)

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Call the admin API (`path` is relative to `admin_url`, e.g. "/reset")."""
        with self.http() as client:
            response = client.request(method, self.ready["admin_url"] + path, **kwargs)
        response.raise_for_status()
        return response

    def reset(self) -> None:
        """Back to the seeded state: no PATs, secrets, groups, faults, policies or sessions."""
        self.admin("POST", "/reset")


def start_emulator(
    state_dir: Path,
    *extra: str,
    timeout: float = 20.0,
    python: Sequence[str] = (sys.executable,),
) -> RunningEmulator:
    """Start `patwarden emulator` in a subprocess and wait for its ready file.

    *python* is the interpreter with its own options (a benchmark profiles with ``-m cProfile``).
    """
    ready_file = state_dir / "ready.json"
    ready_file.unlink(missing_ok=True)
    process = subprocess.Popen(
        [
            *python,
            "-m",
            "patwarden",
            "emulator",
            "--state-dir",
            str(state_dir),
            "--ready-file",
            str(ready_file),
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + timeout
    while not ready_file.exists():
        if process.poll() is not None:
            stderr = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"emulator exited with {process.returncode}: {stderr}")
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("emulator did not become ready in time")
        time.sleep(0.01)
    running = RunningEmulator(process, json.loads(ready_file.read_text()), state_dir)
    if clock.is_pinned():  # the emulated Azure DevOps lives at the tests' pinned date too
        running.admin("PUT", "/clock", json={"offset_seconds": clock.OFFSET.total_seconds()})
    return running


def stop_emulator(emulator: RunningEmulator, signum: int = signal.SIGTERM) -> int:
    """Stop the emulator (SIGTERM, or *signum*) and return its exit code."""
    emulator.process.send_signal(signum)
    try:
        return emulator.process.wait(timeout=10)
    finally:
        if emulator.process.poll() is None:
            emulator.process.kill()
        if emulator.process.stderr:
            emulator.process.stderr.close()
