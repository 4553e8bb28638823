"""Shared fixtures: a clean environment and the real emulator, started through the real CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from patwarden.tls import ssl_context

_AMBIENT_PREFIXES = ("AZURE_", "AZDO_", "SYSTEM_ACCESSTOKEN", "PATWARDEN_", "MSAL_", "IDENTITY_")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ambient Azure or patwarden settings leak into a test (httpx's `clean_environ`)."""
    for name in list(os.environ):
        if name.startswith(_AMBIENT_PREFIXES):
            monkeypatch.delenv(name, raising=False)


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


def start_emulator(state_dir: Path, *extra: str, timeout: float = 20.0) -> RunningEmulator:
    """Start `patwarden emulator` in a subprocess and wait for its ready file."""
    ready_file = state_dir / "ready.json"
    ready_file.unlink(missing_ok=True)
    process = subprocess.Popen(
        [
            sys.executable,
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
        time.sleep(0.05)
    return RunningEmulator(process, json.loads(ready_file.read_text()), state_dir)


def stop_emulator(emulator: RunningEmulator) -> int:
    """SIGTERM the emulator and return its exit code."""
    emulator.process.send_signal(signal.SIGTERM)
    try:
        return emulator.process.wait(timeout=10)
    finally:
        if emulator.process.poll() is None:
            emulator.process.kill()
        if emulator.process.stderr:
            emulator.process.stderr.close()


@pytest.fixture(scope="session")
def emulator_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    """One emulator per test worker, shared by the tests that ask for `emulator`."""
    running = start_emulator(tmp_path_factory.mktemp("emulator"))
    try:
        yield running
    finally:
        stop_emulator(running)


@pytest.fixture
def emulator(emulator_session: RunningEmulator) -> RunningEmulator:
    """The shared emulator, reset to its seeded state before the test."""
    emulator_session.reset()
    return emulator_session
