"""Running ``patwarden serve`` in a subprocess for the CLI tests: start it, wait for its log
lines and endpoints, signal it, and seed PATs issued "minutes ago" so they come due at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.clock import OFFSET, OFFSET_ENV, PINNED_CLI, patwarden_argv
from tests.support.emulator import RunningEmulator
from tests.support.receivers import free_port


def wait_for(
    what: str,
    check: Callable[[], Any],
    *,
    timeout: float = 30.0,
    context: Callable[[], Any] | None = None,
) -> Any:
    """Poll *check* until it returns something truthy; fail naming *what* (and showing
    *context*, if given) after *timeout*."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            shown = f": {context()}" if context else ""
            raise AssertionError(f"timed out waiting for {what}{shown}")
        time.sleep(0.2)


@dataclass
class Serve:
    """One ``patwarden serve`` process."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def events(self) -> list[dict[str, Any]]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [json.loads(line) for line in lines if line.startswith("{")]

    def wait_event(
        self, event: str, *, token: str | None = None, after: int = 0, timeout: float = 30
    ) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            for found in self.events()[after:]:
                if found.get("event") == event and (token is None or found.get("token") == token):
                    return found
            assert self.process.poll() is None, (
                f"serve exited with {self.process.returncode}: {self.log.read_text()}"
            )
            return None

        result: dict[str, Any] = wait_for(
            f"{event} {token or ''}".strip(), find, timeout=timeout, context=self.timeline
        )
        return result

    def timeline(self) -> str:
        """The service's log as "time event token: message" lines (for a failed wait)."""
        return "\n" + "\n".join(
            f"{e.get('at')} {e.get('event')} {e.get('token', '')}: {e.get('message', '')}"
            for e in self.events()
        )

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10)

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(self.get("/metrics").text)
            for s in family.samples
        }

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()


def start_serve(config: Path, log: Path, *, env: dict[str, str] | None = None) -> Serve:
    port = free_port()
    handle = log.open("ab")
    process = subprocess.Popen(
        [
            *patwarden_argv(),
            "serve",
            "--config",
            str(config),
            "--log-format",
            "json",
            "--listen",
            f"127.0.0.1:{port}",
        ],
        stdin=subprocess.DEVNULL,
        stdout=handle,
        stderr=handle,
        env={**os.environ, **(env or {})},
    )
    handle.close()
    serve = Serve(process=process, url=f"http://127.0.0.1:{port}", log=log)
    wait_for("serve to answer /healthz", lambda: _answers(serve), timeout=30)
    return serve


def _answers(serve: Serve) -> bool:
    assert serve.process.poll() is None, serve.log.read_text()
    try:
        return serve.get("/healthz").status_code == 200
    except httpx.HTTPError:
        return False


def rotate_in_the_past(
    emulator: RunningEmulator, config: Path, *, seconds: float
) -> subprocess.CompletedProcess[str]:
    """``patwarden rotate`` as if it ran *seconds* ago: the emulator's business clock and the
    CLI's clock are both moved back for the run, then the emulator's is put back."""
    emulator.admin("PUT", "/clock", json={"offset_seconds": OFFSET.total_seconds() - seconds})
    try:
        return subprocess.run(
            [sys.executable, str(PINNED_CLI), "rotate", "--config", str(config), "-o", "json"],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            env={**os.environ, OFFSET_ENV: repr(OFFSET.total_seconds() - seconds)},
            timeout=120,
            check=False,
        )
    finally:
        emulator.admin("PUT", "/clock", json={"offset_seconds": OFFSET.total_seconds()})
