"""Helpers for CLI tests: run the real `patwarden` in a subprocess against the real emulator."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from patwarden.config.model import load_config
from patwarden.identity.credential_set import CredentialSet
from tests.conftest import RunningEmulator
from tests.support.clock import TestClock, patwarden_argv

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
    argv = [*patwarden_argv(), *args]
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


def start_login(config: Path) -> subprocess.Popen[str]:
    """Start `patwarden login` with stdin closed; settle its device code with
    :func:`tests.support.device_codes.approve_next_device_code`."""
    return subprocess.Popen(
        [*patwarden_argv(), "login", "--config", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )


def logged_requests(emulator: RunningEmulator) -> list[dict[str, Any]]:
    """The emulator's request log (Entra, Azure DevOps and Key Vault; not the admin API)."""
    entries: list[dict[str, Any]] = emulator.admin("GET", "/requests").json()["requests"]
    return entries


def let_access_tokens_expire(config: Path) -> None:
    """Drop the cached access tokens, as an hour passing would: the next run must redeem the
    refresh token (which is where a revoked or expired sign-in shows)."""
    credentials = CredentialSet(load_config(config), clock=TestClock())
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
