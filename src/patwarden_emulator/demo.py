"""``patwarden demo``: a full rotation against a throwaway emulator, narrated, with zero setup.

It starts ``patwarden emulator`` as a subprocess (device codes approved automatically), writes a
config with one token whose PAT goes to a Key Vault secret, a variable group and a file, then runs
the real CLI: ``login``, ``rotate``, ``status``, a forced ``rotate`` and, once the short grace
period has passed, one more ``rotate`` whose reconcile revokes the previous PAT. Between steps it
checks through the emulator's admin API that every sink holds a PAT that authenticates and that
the old PAT stops working. No secret is ever printed: only authorization ids and HTTP statuses.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from patwarden.errors import EmulatorError
from patwarden.secret import Secret

__all__ = ["DEMO_TOKEN", "DemoFailed", "run_demo"]

DEMO_TOKEN = "demo-pat"  # noqa: S105  # a token's name, not a secret
GRACE_SECONDS = 4
READY_TIMEOUT = 30.0
GROUP = "gitops"
VARIABLE = "DEMO_PAT"
_SUPPRESS = {"X-TFS-FedAuthRedirect": "Suppress", "Accept": "application/json"}

Echo = Callable[[str], None]


class DemoFailed(EmulatorError):
    """A check of the demo did not hold (a sink without a working PAT, a PAT not revoked)."""


@dataclass
class _Emulator:
    """The emulator subprocess and what its ready document says."""

    process: subprocess.Popen[bytes]
    ready: dict[str, Any]

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the admin API (with the bearer token of the 0600 ready file); return its JSON.

        Raises:
            DemoFailed: the call failed.
        """
        import httpx

        from patwarden.tls import ssl_context

        auth = {"Authorization": f"Bearer {self.ready['admin_token']}"}
        with httpx.Client(verify=ssl_context(self.ready["ca_bundle"]), timeout=10) as client:
            response = client.request(
                method, self.ready["admin_url"] + path, headers=auth, **kwargs
            )
        if not response.is_success:
            raise DemoFailed(f"the emulator's admin API answered {response.status_code} to {path}")
        return response.json()

    def authenticates(self, pat: Secret) -> int:
        """The HTTP status of ``connectionData`` with *pat* as Basic auth (200: it works)."""
        import httpx

        from patwarden.tls import ssl_context

        encoded = base64.b64encode(f":{pat.reveal()}".encode()).decode()
        url = f"{self.ready['azure_devops_url']}/{self.ready['organization']}/_apis/connectionData"
        with httpx.Client(verify=ssl_context(self.ready["ca_bundle"]), timeout=10) as client:
            response = client.get(url, headers={"Authorization": f"Basic {encoded}", **_SUPPRESS})
        return response.status_code


@contextmanager
def _emulator(workdir: Path) -> Iterator[_Emulator]:
    """Start ``patwarden emulator`` and stop it (SIGTERM) afterwards.

    Raises:
        EmulatorError: it exited early or did not become ready in time.
    """
    ready_file = workdir / "ready.json"
    log = (workdir / "emulator.log").open("wb")
    process = subprocess.Popen(  # noqa: S603  # our own CLI, fixed arguments
        [
            sys.executable,
            "-m",
            "patwarden",
            "emulator",
            "--state-dir",
            str(workdir / "emulator"),
            "--ready-file",
            str(ready_file),
            "--auto-approve-device-codes",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not ready_file.exists():
            if process.poll() is not None:
                raise EmulatorError(
                    f"the emulator exited with status {process.returncode} before it was ready",
                    hint=f"see {workdir / 'emulator.log'}; is the emulator extra installed "
                    "(pip install 'patwarden[emulator]')?",
                )
            if time.monotonic() > deadline:
                raise EmulatorError(
                    f"the emulator was not ready within {READY_TIMEOUT:.0f} s",
                    hint=f"see {workdir / 'emulator.log'}",
                )
            time.sleep(0.05)
        yield _Emulator(process=process, ready=json.loads(ready_file.read_text()))
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def demo_config(emu: _Emulator, workdir: Path) -> Path:
    """The emulator's example config plus one token with three sinks; written 0600."""
    from patwarden.identity.cache_store import write_private_file

    data = yaml.safe_load(Path(emu.ready["example_config"]).read_text())
    sinks = workdir / "sinks"
    sinks.mkdir(mode=0o700, exist_ok=True)
    data["state_dir"] = str(workdir / "state")
    data["tokens"] = {
        DEMO_TOKEN: {
            "scopes": ["vso.code"],
            "lifetime": "30d",
            "rotate_before": "7d",
            "revoke_after": f"{GRACE_SECONDS}s",
            "sinks": [
                {
                    "kind": "key_vault",
                    "vault_url": emu.ready["key_vault_url"],
                    "secret": DEMO_TOKEN,
                    "identity": "writer",
                },
                {
                    "kind": "variable_group",
                    "project": "infra",
                    "group": GROUP,
                    "variable": VARIABLE,
                    "identity": "writer",
                },
                {"kind": "file", "path": str(sinks / f"{DEMO_TOKEN}.txt")},
            ],
        }
    }
    path = workdir / "patwarden.yaml"
    header = "# Written by `patwarden demo` for its throwaway emulator.\n"
    write_private_file(path, (header + yaml.safe_dump(data, sort_keys=False)).encode())
    return path


class _Scenario:
    """The narrated steps; each runs the real CLI or checks the emulator."""

    def __init__(self, *, emu: _Emulator, config: Path, workdir: Path, echo: Echo) -> None:
        self.emu = emu
        self.config = config
        self.workdir = workdir
        self.echo = echo
        self.group_id = 0

    def cli(self, *args: str) -> str:
        """Run ``patwarden ARGS --config …``, show its output indented, return it.

        Raises:
            DemoFailed: the command exited non-zero.
        """
        self.echo(f"  $ patwarden {' '.join(args)}")
        result = subprocess.run(  # noqa: S603  # our own CLI, fixed arguments
            [sys.executable, "-m", "patwarden", *args, "--config", str(self.config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # one stream, in the order the command wrote it
            text=True,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "COLUMNS": "160"},
            timeout=120,
            check=False,
        )
        for line in result.stdout.rstrip().splitlines():
            self.echo(f"    {line}")
        if result.returncode != 0:
            raise DemoFailed(f"`patwarden {args[0]}` exited with status {result.returncode}")
        return result.stdout

    def sink_values(self) -> dict[str, Secret]:
        """What each sink holds now, read through the admin API (kept in memory only)."""
        versions = self.emu.admin("GET", f"/key-vault/secrets/{DEMO_TOKEN}")["versions"]
        group = self.emu.admin("GET", f"/variable-groups/{self.group_id}/secrets")["variables"]
        text = (self.workdir / "sinks" / f"{DEMO_TOKEN}.txt").read_text()
        return {
            f"Key Vault secret {DEMO_TOKEN}": Secret(str(versions[-1]["value"])),
            f"variable group infra/{GROUP} ({VARIABLE})": Secret(str(group[VARIABLE]["value"])),
            f"file sinks/{DEMO_TOKEN}.txt": Secret(text),
        }

    def check_sinks(self) -> Secret:
        """Every sink holds the same PAT and it authenticates; return it.

        Raises:
            DemoFailed: a sink holds another value, or the PAT is refused.
        """
        values = self.sink_values()
        first = next(iter(values.values()))
        for where, value in values.items():
            status = self.emu.authenticates(value)
            same = value.reveal() == first.reveal()
            mark = "✓" if status == 200 and same else "✗"
            self.echo(f"  {mark} {where}: holds the PAT; connectionData answers HTTP {status}")
            if status != 200 or not same:
                raise DemoFailed(f"{where} does not hold the working PAT")
        return first

    def check_pat(self, pat: Secret, *, works: bool, what: str) -> None:
        """Say whether *pat* authenticates, and fail the demo if that is not what we expect.

        Raises:
            DemoFailed: it does (or does not) authenticate against expectations.
        """
        status = self.emu.authenticates(pat)
        ok = (status == 200) is works
        verdict = "still authenticates" if status == 200 else "is refused"
        self.echo(f"  {'✓' if ok else '✗'} {what} {verdict} (HTTP {status})")
        if not ok:
            raise DemoFailed(f"{what} {verdict}, which it should not")


def run_demo(*, echo: Echo, keep: bool = False) -> Path | None:
    """Run the whole demo, narrating through *echo*; return the kept work directory, if any.

    Raises:
        EmulatorError: the emulator could not start.
        DemoFailed: a step or a check failed (the narration shows which).
    """
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="patwarden-demo-"))
    try:
        _scenario(workdir, echo=echo)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    echo(f"Done in {time.monotonic() - started:.0f} s. Nothing left this machine.")
    return workdir if keep else None


def _scenario(workdir: Path, *, echo: Echo) -> None:
    echo("patwarden demo: rotate a PAT end to end against a local emulator (zero setup).\n")
    echo("[1/7] Start the emulator: Entra ID, Azure DevOps and Key Vault over HTTPS on loopback.")
    with _emulator(workdir) as emu:
        echo(f"  ready at {emu.ready['admin_url'].removesuffix('/_admin')}")
        config = demo_config(emu, workdir)
        run = _Scenario(emu=emu, config=config, workdir=workdir, echo=echo)
        body = {"project": "infra", "name": GROUP, "variables": {"OTHER": {"value": "kept"}}}
        run.group_id = int(emu.admin("POST", "/variable-groups", json=body)["id"])
        echo(
            f"\n[2/7] Configure token {DEMO_TOKEN!r} (scope vso.code, lifetime 30d, rotate 7d "
            f"before expiry, {GRACE_SECONDS} s grace) with three sinks: Key Vault secret "
            f"{DEMO_TOKEN!r}, variable {VARIABLE} of group infra/{GROUP}, and a file."
        )
        run.cli("config", "check")
        echo(
            "\n[3/7] Sign the rotator in once with a device code (the emulator approves it as "
            "the MFA user)."
        )
        run.cli("login")
        echo("\n[4/7] Rotate: create the PAT, write every sink, verify, promote.")
        run.cli("rotate", "--output", "table")
        first = run.check_sinks()
        run.cli("status", "--output", "table")
        echo("\n[5/7] Rotate again (--force): the previous PAT stays valid for its grace period.")
        run.cli("rotate", "--force", "--output", "table")
        second = run.check_sinks()
        run.check_pat(first, works=True, what="the previous PAT (within its grace period)")
        echo(
            f"\n[6/7] Wait {GRACE_SECONDS} s for the grace period to end, then rotate: reconcile "
            "revokes the previous PAT."
        )
        time.sleep(GRACE_SECONDS + 0.5)
        run.cli("rotate", "--output", "table")
        run.check_pat(first, works=False, what="the previous PAT")
        run.check_pat(second, works=True, what="the current PAT")
        echo("\n[7/7] The audit log (append-only; never a secret).")
        run.cli("audit", "--output", "table")
        echo("\nStop the emulator.")
