"""A managed-token world on the emulator, and the invariants checked through the emulator.

:class:`World` writes a config whose tokens each feed a Key Vault secret, a variable group
variable and a file (the writer is the emulator's service principal), signs the rotator in, runs
the real ``patwarden`` CLI in subprocesses, and checks the invariants of the reliability issue
from the outside — through the emulator's admin API and the sink files, never through
patwarden's own state:

1. every sink of every token holds a PAT that authenticates against Azure DevOps;
2. after recovery and the grace period, exactly one active patwarden-created PAT per token;
3. no secret anywhere but the sinks (the :class:`~tests.reliability.leaks.LeakScanner`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.conftest import RunningEmulator
from tests.reliability.invariants import (
    Run,
    authenticates,
    marked_pats,
    serving_problems,
    settled_problems,
)
from tests.reliability.leaks import LeakScanner
from tests.support.device_codes import login_in_process

SINK_KINDS = ("key_vault", "variable_group", "file")
# Requests the invariant checks make themselves: never held or faulted by a scenario.
CHECK_ROUTE = r"GET /devops/[^/]+/_apis/connectionData"
NOT_A_CHECK = rf"^(?!{CHECK_ROUTE})"
CLI_TIMEOUT = 180


@dataclass
class World:
    """Tokens, sinks, config and a signed-in rotator on the shared emulator."""

    emulator: RunningEmulator
    root: Path
    scanner: LeakScanner
    tokens: tuple[str, ...] = ("crash",)
    revoke_after: str = "0s"
    file_first: bool = False  # the file sink first: the only sink written when a crash hits it
    # Reach Azure DevOps and Key Vault through this origin (a hostile proxy), trusting this bundle.
    via: tuple[str, Path] | None = None
    config: Path = field(init=False)
    groups: dict[str, int] = field(init=False, default_factory=dict)
    runs: int = 0
    _http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self._http = self.emulator.http(timeout=30)
        self.scanner.emulator = self.emulator
        sp = self.emulator["identities"]["service_principal"]
        self.scanner.remember("client secret", str(sp["client_secret"]))
        (self.root / "sinks").mkdir(mode=0o700, parents=True, exist_ok=True)
        (self.root / "out").mkdir(exist_ok=True)
        self.scanner.watch(self.root)
        example = yaml.safe_load(Path(self.emulator["example_config"]).read_text())
        example["state_dir"] = str(self.root / "state")
        example["rotation"] = {"orphan_margin": "1s", "lock_timeout": "2m"}
        example["tokens"] = {name: self._token(name) for name in self.tokens}
        if self.via is not None:
            origin, bundle = self.via
            example["azure"].update(
                azure_devops_url=f"{origin}/devops",
                vssps_url=f"{origin}/vssps",
                ca_bundle=str(bundle),
            )
        self.config = self.root / "patwarden.yaml"
        self.config.write_text(yaml.safe_dump(example, sort_keys=False))
        self.config.chmod(0o600)
        login_in_process(self.emulator, self.config)

    def _token(self, name: str) -> dict[str, Any]:
        body = {"project": "infra", "name": f"vg-{name}", "variables": {"OTHER": {"value": "1"}}}
        group = self.emulator.admin("POST", "/variable-groups", json=body).json()["id"]
        self.groups[name] = int(group)
        sink_file = self.sink_file(name)
        self.scanner.allow(sink_file, sink_file.with_name(sink_file.name + ".previous"))
        return {
            # vso.project makes patwarden verify with _apis/projects, leaving connectionData to
            # the invariant checks (which a scenario's faults never touch).
            "scopes": ["vso.code", "vso.project"],
            "lifetime": "30d",
            "rotate_before": "7d",
            "revoke_after": self.revoke_after,
            "sinks": [
                {
                    "kind": "key_vault",
                    "vault_url": self.via[0] if self.via else self.emulator["key_vault_url"],
                    "secret": f"{name}-pat",
                    "identity": "writer",
                },
                {
                    "kind": "variable_group",
                    "project": "infra",
                    "group": int(group),
                    "variable": "PAT",
                    "identity": "writer",
                },
                {"kind": "file", "path": str(sink_file)},
            ][:: -1 if self.file_first else 1],
        }

    def close(self) -> None:
        self._http.close()

    def sink_file(self, token: str) -> Path:
        return self.root / "sinks" / token

    # --- running patwarden ---------------------------------------------------------------------

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "patwarden", "--debug", *args, "--config", str(self.config)]

    def start(
        self, *args: str, env: dict[str, str] | None = None, wrapper: Sequence[str] = ()
    ) -> subprocess.Popen[bytes]:
        """Start ``[WRAPPER] patwarden --debug ARGS``; its output goes to files that are scanned."""
        self.runs += 1
        out = self.root / "out" / f"run-{self.runs}"
        with open(f"{out}.stdout", "wb") as stdout, open(f"{out}.stderr", "wb") as stderr:
            return subprocess.Popen(
                [*wrapper, *self.argv(*args)],
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                env={**os.environ, "COLUMNS": "200", **(env or {})},
            )

    def output(self, process: subprocess.Popen[bytes]) -> tuple[str, str]:
        """The stdout and stderr of the last process started (after it ended)."""
        out = self.root / "out" / f"run-{self.runs}"
        return (
            Path(f"{out}.stdout").read_text(errors="replace"),
            Path(f"{out}.stderr").read_text(errors="replace"),
        )

    def cli(self, *args: str, env: dict[str, str] | None = None) -> Run:
        """Run ``patwarden --debug ARGS`` to the end."""
        process = self.start(*args, env=env)
        try:
            code = process.wait(timeout=CLI_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            raise
        stdout, stderr = self.output(process)
        return Run(code, stdout, stderr)

    # --- the world as the emulator sees it -----------------------------------------------------

    def served(self, token: str) -> dict[str, str | None]:
        """What each sink of ``token`` serves now (None: nothing, or a disabled version)."""
        values: dict[str, str | None] = {}
        answer = self._http.get(f"{self.emulator['admin_url']}/key-vault/secrets/{token}-pat")
        latest = answer.json()["versions"][-1] if answer.status_code == 200 else None
        values["key_vault"] = latest["value"] if latest and latest["enabled"] else None
        group = self.emulator.admin("GET", f"/variable-groups/{self.groups[token]}/secrets")
        values["variable_group"] = group.json()["variables"].get("PAT", {}).get("value")
        path = self.sink_file(token)
        values["file"] = path.read_text() if path.exists() else None
        return values

    def authenticates(self, pat: str) -> bool:
        """Whether Azure DevOps accepts ``pat`` (``connectionData`` names its user)."""
        return authenticates(self._http, self.emulator, pat)

    def active_marked(self, token: str) -> list[dict[str, Any]]:
        """The active PATs whose display name carries ``token``'s marker."""
        return [pat for pat in marked_pats(self.emulator, token) if not pat["revoked"]]

    # --- invariants ----------------------------------------------------------------------------

    def serving_problems(self, token: str) -> list[str]:
        """Invariant 1: every sink holds a PAT that authenticates (empty when it holds)."""
        return serving_problems(token, self.served(token), self.authenticates)

    def settled_problems(self, token: str) -> list[str]:
        """Invariants 1 and 2, and every secret file private."""
        served = self.served(token)
        active = self.active_marked(token)
        found = settled_problems(token, served, active, self.authenticates)
        return found + self.mode_problems(token)

    def mode_problems(self, token: str) -> list[str]:
        """Files that hold secrets or their metadata must be 0600 (their directories 0700)."""
        sink = self.sink_file(token)
        state = self.root / "state"
        files = [
            state / "state.db",
            state / "rotator.cache",
            sink,
            sink.with_name(sink.name + ".previous"),
        ]
        files.append(sink.with_name(sink.name + ".patwarden.json"))
        problems = [
            f"{path.name} has mode {path.stat().st_mode & 0o777:o}"
            for path in files
            if path.exists() and path.stat().st_mode & 0o777 != 0o600
        ]
        if state.exists() and state.stat().st_mode & 0o077:
            problems.append(f"{state} has mode {state.stat().st_mode & 0o777:o}")
        return problems
