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
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from patwarden.tls import ssl_context
from tests.support import clock


class AdminAuth(httpx.Auth):
    """Adds the admin API's bearer token (from the 0600 ready file) to requests under admin_url.

    Requests elsewhere (Entra, Azure DevOps, Key Vault) and requests that set their own
    Authorization header go out untouched, so one client serves both.
    """

    def __init__(self, admin_url: str, token: str) -> None:
        self.admin_url = admin_url
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if str(request.url).startswith(self.admin_url) and "authorization" not in request.headers:
            request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


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

    @property
    def admin_auth(self) -> AdminAuth:
        """Authenticates admin API calls with the token only the ready file holds."""
        return AdminAuth(str(self.ready["admin_url"]), str(self.ready["admin_token"]))

    def http(self, *, timeout: float = 10, **kwargs: Any) -> httpx.Client:
        """An httpx client that trusts the emulator's CA (never `verify=False`) and
        authenticates to the admin API (and only to it)."""
        return httpx.Client(
            verify=ssl_context(self.ca_bundle), timeout=timeout, auth=self.admin_auth, **kwargs
        )

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
