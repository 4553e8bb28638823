"""Helpers for CLI tests: run the real `patwarden` in a subprocess against the real emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from patwarden.config import load_config
from patwarden.identity.credential_set import CredentialSet
from tests.conftest import RunningEmulator
from tests.identity.emulator_support import ApprovingStream

CLI_TIMEOUT = 120


@dataclass(frozen=True)
class Run:
    """What one CLI process did."""

    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def cli(*args: str, config: Path | None = None, env: dict[str, str] | None = None) -> Run:
    """Run `python -m patwarden ARGS` with stdin closed (nobody can answer a prompt)."""
    argv = [sys.executable, "-m", "patwarden", *args]
    if config is not None:
        argv += ["--config", str(config)]
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=CLI_TIMEOUT,
        check=False,
    )
    return Run(result.returncode, result.stdout, result.stderr)


def write_config(
    emulator: RunningEmulator,
    tmp_path: Path,
    *,
    rotator: str | None = None,
    identities: dict[str, Any] | None = None,
    rotator_settings: dict[str, Any] | None = None,
    tokens: dict[str, Any] | None = None,
) -> Path:
    """The emulator's example config, with patwarden's state in *tmp_path* (one cache per test)."""
    example = Path(emulator["example_config"])
    data = yaml.safe_load(example.read_text())
    data["state_dir"] = str(tmp_path / "state")
    data["identities"]["rotator"].update(rotator_settings or {})
    data["identities"].update(identities or {})
    if rotator is not None:
        data["rotator"] = rotator
    data["tokens"] = tokens or {}  # not the example's token: each test declares its own
    path = tmp_path / "patwarden.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    path.chmod(0o600)
    return path


def login_in_process(emulator: RunningEmulator, config: Path) -> None:
    """Sign the rotator in without the CLI (fast: the code is approved before the first poll)."""
    credentials = CredentialSet(load_config(config))
    try:
        credentials.user("rotator").login(out=ApprovingStream(emulator), timeout=60)
    finally:
        credentials.close()


def approve_next_device_code(
    emulator: RunningEmulator, process: subprocess.Popen[str], *, deny: bool = False
) -> str:
    """Play the human: wait for the pending code the CLI asked for, then approve (or deny) it."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pending = emulator.admin("GET", "/device-codes").json()["value"]
        if pending:
            code = str(pending[0]["user_code"])
            action = "/device-codes/deny" if deny else "/device-codes/approve"
            emulator.admin("POST", action, json={"user_code": code})
            return code
        if process.poll() is not None:
            raise AssertionError(f"login exited early with {process.returncode}")
        time.sleep(0.1)
    raise AssertionError("the login never asked Entra for a device code")


def issued_secrets(emulator: RunningEmulator) -> list[tuple[str, str]]:
    """Every PAT, access token and refresh token the emulator handed out since the reset."""
    secrets = emulator.admin("GET", "/issued-secrets").json()["secrets"]
    return [(str(item["kind"]), str(item["value"])) for item in secrets]


def assert_no_secret_in(emulator: RunningEmulator, *texts: str) -> None:
    """No secret value the emulator issued appears in any of *texts*."""
    for kind, value in issued_secrets(emulator):
        for text in texts:
            assert value not in text, f"a {kind} leaked into the output"


def logged_requests(emulator: RunningEmulator) -> list[dict[str, Any]]:
    """The emulator's request log (Entra, Azure DevOps and Key Vault; not the admin API)."""
    entries: list[dict[str, Any]] = emulator.admin("GET", "/requests").json()["requests"]
    return entries


def let_access_tokens_expire(config: Path) -> None:
    """Drop the cached access tokens, as an hour passing would: the next run must redeem the
    refresh token (which is where a revoked or expired sign-in shows)."""
    credentials = CredentialSet(load_config(config))
    try:
        store = credentials.user("rotator").store
        with store.locked():
            envelope = store.load()
            assert envelope is not None, "not logged in"
            msal_cache = json.loads(envelope.msal_cache)
            msal_cache["AccessToken"] = {}
            store.save(replace(envelope, msal_cache=json.dumps(msal_cache)))
    finally:
        credentials.close()
