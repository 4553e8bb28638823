"""Shared helpers of the crash matrix, the concurrent-rotate test and the fault soak (issue 6).

:class:`Fleet` is a config of managed tokens on the shared emulator — each token feeds a Key Vault
secret, a file and a variable in the variable group ``infra/gitops`` (or a group of its own) —
with the rotator signed in.
It runs the real ``patwarden`` CLI in subprocesses (their output goes to files the leak scanner
reads) and checks the invariants of issue 6 from the outside, through the emulator's admin API
and the sink files, never through patwarden's own state:

1. every sink holds a PAT that authenticates against the emulated Azure DevOps;
2. after recovery and the grace period, exactly one active patwarden-created PAT per token;
3. no secret outside the sinks (the :class:`~tests.reliability.leaks.LeakScanner`).

The hold helpers (:meth:`Fleet.hold`, :meth:`Fleet.wait_held`, :meth:`Fleet.release`) park a
request of a running ``rotate`` in the emulator, so a test can SIGKILL the process at that exact
point of the protocol: production code gets no test hooks.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx

from tests.conftest import RunningEmulator
from tests.reliability.invariants import (
    Run,
    authenticates,
    marked_pats,
    revocation_problems,
    serving_problems,
    settled_problems,
    wait_until,
)
from tests.reliability.leaks import LeakScanner
from tests.support.configs import save_config, sink_dir
from tests.support.device_codes import login_in_process
from tests.support.sinks import key_vault_versions

CLI_TIMEOUT = 120
GROUP = "gitops"
PROJECT = "infra"

# Request routes of one rotation ("METHOD path", no query string), for hold and fault rules.
ROUTES = {
    "list": r"^GET /vssps/[^/]+/_apis/tokens/pats$",
    "create": r"^POST /vssps/[^/]+/_apis/tokens/pats$",
    "revoke": r"^DELETE /vssps/[^/]+/_apis/tokens/pats$",
    "verify": r"^GET /devops/[^/]+/_apis/connectionData$",
    "kv_read": r"^GET /secrets/{token}-pat/?$",
    "kv_write": r"^PUT /secrets/{token}-pat$",
    "kv_versions": r"^GET /secrets/{token}-pat/versions$",
    "kv_tag": r"^PATCH /secrets/{token}-pat/",
    "vg_find": r"^GET /devops/[^/]+/infra/_apis/distributedtask/variablegroups$",
    "vg_read": r"^GET /devops/[^/]+/infra/_apis/distributedtask/variablegroups/\d+$",
    "vg_write": r"^PUT /devops/[^/]+/_apis/distributedtask/variablegroups/\d+$",
}

T = TypeVar("T")


def route(name: str, token: str) -> str:
    """The regex of the request *name* (a key of :data:`ROUTES`) for *token*."""
    return ROUTES[name].format(token=token)


def create_requests(emulator: RunningEmulator) -> list[dict[str, Any]]:
    """The PAT create requests in the emulator's request log."""
    return [
        entry
        for entry in emulator.admin("GET", "/requests").json()["requests"]
        if re.search(route("create", ""), f"{entry['method']} {entry['path'].split('?')[0]}")
    ]


def variable(token: str) -> str:
    """The variable-group variable of *token*."""
    return f"{token.upper().replace('-', '_')}_PAT"


@dataclass
class Fleet:
    """Managed tokens with Key Vault, file and variable-group sinks; the rotator signed in."""

    emulator: RunningEmulator
    root: Path
    scanner: LeakScanner
    tokens: tuple[str, ...] = ("crash",)
    revoke_after: str = "0s"
    orphan_margin: str = "1s"
    shared_group: bool = True  # one variable group for every token (else one group per token)
    state: dict[str, Any] | None = None  # a `state:` section (None: SQLite in root / "state")
    ca_bundle: str | None = None  # replaces azure.ca_bundle (the Blob state: Azurite's CA too)
    config: Path = field(init=False)
    group_ids: dict[str, int] = field(init=False, default_factory=dict)
    runs: list[Run] = field(init=False, default_factory=list)
    _started: int = field(init=False, default=0)
    _outputs: dict[int, str] = field(init=False, default_factory=dict)
    _http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self._http = self.emulator.http(timeout=30)
        self.scanner.emulator = self.emulator
        sp = self.emulator["identities"]["service_principal"]
        self.scanner.remember("client secret", str(sp["client_secret"]))
        self.scanner.watch(self.root)
        (self.root / "out").mkdir(parents=True, exist_ok=True)
        for name in dict.fromkeys(self.group(token) for token in self.tokens):
            body = {"project": PROJECT, "name": name, "variables": {"OTHER": {"value": "kept"}}}
            answer = self.emulator.admin("POST", "/variable-groups", json=body)
            self.group_ids[name] = int(answer.json()["id"])
        data = self.config_data()
        self.config = save_config(self.root / "patwarden.yaml", data, sort_keys=False)
        login_in_process(self.emulator, self.config)

    def config_data(self) -> dict[str, Any]:
        """The emulator's example config with this fleet's tokens and a short orphan margin."""
        import yaml

        data: dict[str, Any] = yaml.safe_load(Path(self.emulator["example_config"]).read_text())
        data["state_dir"] = str(self.root / "state")
        data["rotation"] = {"orphan_margin": self.orphan_margin, "lock_timeout": "2m"}
        data["tokens"] = {name: self.token_entry(name) for name in self.tokens}
        if self.state is not None:
            data["state"] = self.state
        if self.ca_bundle is not None:
            data["azure"]["ca_bundle"] = self.ca_bundle
        return data

    def token_entry(self, name: str) -> dict[str, Any]:
        sink_file = self.sink_file(name)
        self.scanner.allow(sink_file, sink_file.with_name(sink_file.name + ".previous"))
        return {
            "scopes": ["vso.code"],
            "lifetime": "30d",
            "rotate_before": "7d",
            "revoke_after": self.revoke_after,
            "sinks": [
                {
                    "kind": "key_vault",
                    "vault_url": self.emulator["key_vault_url"],
                    "secret": f"{name}-pat",
                    "identity": "writer",
                },
                {"kind": "file", "path": str(self.sink_file(name))},
                {
                    "kind": "variable_group",
                    "project": PROJECT,
                    "group": self.group(name),
                    "variable": variable(name),
                    "identity": "writer",
                },
            ],
        }

    def close(self) -> None:
        self._http.close()

    def group(self, token: str) -> str:
        """The variable group *token* writes its variable to."""
        return GROUP if self.shared_group else f"{GROUP}-{token}"

    def sink_file(self, token: str) -> Path:
        return sink_dir(self.root) / f"{token}.pat"

    # --- running patwarden -----------------------------------------------------------------------

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        """Start ``patwarden --debug ARGS -o json``; its output goes to files read at the end."""
        self._started += 1
        out = self.root / "out" / f"run-{self._started}"
        argv = [sys.executable, "-m", "patwarden", "--debug", *args, "--config", str(self.config)]
        with open(f"{out}.stdout", "wb") as stdout, open(f"{out}.stderr", "wb") as stderr:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                env={**os.environ, "COLUMNS": "200"},
            )
        self._outputs[process.pid] = str(out)
        return process

    def finish(self, process: subprocess.Popen[bytes], *, timeout: float = CLI_TIMEOUT) -> Run:
        """Wait for *process* (killing it on timeout) and collect what it printed."""
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
        out = self._outputs.pop(process.pid)
        run = Run(
            code,
            Path(f"{out}.stdout").read_text(errors="replace"),
            Path(f"{out}.stderr").read_text(errors="replace"),
        )
        self.runs.append(run)
        self.scanner.capture(f"{Path(out).name} stdout", run.stdout)
        self.scanner.capture(f"{Path(out).name} stderr", run.stderr)
        return run

    def cli(self, *args: str) -> Run:
        return self.finish(self.start(*args))

    def rotate(self, *args: str) -> Run:
        return self.cli("rotate", "-o", "json", *args)

    # --- holding requests in the emulator --------------------------------------------------------

    def hold(self, pattern: str, *, after: bool = False, count: int = 1) -> int:
        """Park the next *count* requests matching *pattern* (after the service if *after*)."""
        rule = {"route": pattern, "kind": "hold", "count": count, "after": after}
        return int(self.emulator.admin("POST", "/faults", json=rule).json()["id"])

    def held(self) -> list[dict[str, Any]]:
        requests: list[dict[str, Any]] = self.emulator.admin("GET", "/faults/held").json()[
            "requests"
        ]
        return requests

    def wait_held(
        self, process: subprocess.Popen[bytes], *, count: int = 1, timeout: float = 60
    ) -> list[dict[str, Any]]:
        """Wait until *count* requests are parked; fail if *process* ends first."""

        def parked() -> list[dict[str, Any]] | None:
            held = self.held()
            if len(held) >= count:
                return held
            if process.poll() is not None:
                raise AssertionError(
                    f"rotate exited ({process.returncode}) before its request was held"
                )
            return None

        held = wait_until(parked, timeout=timeout)
        assert held, "the held request never arrived"
        return held

    def release(self, action: Literal["continue", "drop"], count: int | None = None) -> int:
        body: dict[str, Any] = {"action": action}
        if count is not None:
            body["count"] = count
        return int(self.emulator.admin("POST", "/faults/release", json=body).json()["released"])

    def clear_faults(self) -> None:
        self.emulator.admin("DELETE", "/faults")

    def kill(self, process: subprocess.Popen[bytes]) -> Run:
        """SIGKILL *process* (no cleanup runs) and collect what it printed until then."""
        process.send_signal(signal.SIGKILL)
        return self.finish(process, timeout=30)

    # --- the world as the emulator sees it -------------------------------------------------------

    def served(self, token: str) -> dict[str, str | None]:
        """What each sink of *token* serves now (None: nothing, or a disabled version)."""
        values: dict[str, str | None] = {}
        answer = self._http.get(f"{self.emulator['admin_url']}/key-vault/secrets/{token}-pat")
        newest = answer.json()["versions"][-1] if answer.status_code == 200 else None
        values["key_vault"] = str(newest["value"]) if newest and newest["enabled"] else None
        group_id = self.group_ids[self.group(token)]
        group = self.emulator.admin("GET", f"/variable-groups/{group_id}/secrets").json()
        held = group["variables"].get(variable(token), {}).get("value")
        values["variable_group"] = str(held) if held else None
        path = self.sink_file(token)
        values["file"] = path.read_text() if path.exists() else None
        return values

    def authenticates(self, pat: str) -> bool:
        """Whether the emulated Azure DevOps accepts *pat* (``connectionData`` names its user)."""
        return authenticates(self._http, self.emulator, pat)

    def marked(self, token: str) -> list[dict[str, Any]]:
        """Every PAT (active or not) whose display name carries *token*'s marker."""
        return marked_pats(self.emulator, token)

    def active_marked(self, token: str) -> list[dict[str, Any]]:
        return [pat for pat in self.marked(token) if not pat["revoked"]]

    # --- invariants ------------------------------------------------------------------------------

    def serving_problems(self, token: str, *, allow_empty: bool = False) -> list[str]:
        """Invariant 1: every sink holds a PAT that authenticates (empty list when it holds).

        ``allow_empty`` tolerates a sink that holds nothing yet (before a first rotation).
        """
        return serving_problems(
            token, self.served(token), self.authenticates, allow_empty=allow_empty
        )

    def settled_problems(self, token: str) -> list[str]:
        """Invariants 1 and 2: the sinks serve one working PAT, the only active marked one."""
        return settled_problems(
            token, self.served(token), self.active_marked(token), self.authenticates
        )

    def revocation_problems(
        self, token: str, pat_id: str, audit: list[dict[str, Any]]
    ) -> list[str]:
        """The revocation of *token*'s previous PAT *pat_id* is complete: revoked, audited
        ``revoked_previous`` exactly once, every Key Vault version holding it tagged ``revokedAt``
        (an empty list when it is)."""
        return revocation_problems(
            pat_id,
            revoked=pat_id not in {p["authorizationId"] for p in self.active_marked(token)},
            audit=audit,
            versions=key_vault_versions(self.emulator, f"{token}-pat"),
        )

    def audit(self) -> list[dict[str, Any]]:
        run = self.cli("audit", "-o", "json")
        assert run.code == 0, run.stderr[-2000:]
        records: list[dict[str, Any]] = json.loads(run.stdout)
        return records


# --- the fault soak ---------------------------------------------------------------------------

FAULT_KINDS = ("status", "throttle", "timeout", "reset")
FAULT_RATE = 0.10  # the share of requests, on every route, that meets one of the faults
TIMEOUT_MS = 1500  # a "timeout" fault: the server is silent this long, then drops the connection


def fault_rules(seed: int, *, rate: float = FAULT_RATE) -> list[dict[str, Any]]:
    """Seeded rules on every route (``.``): 5xx, 429 + ``Retry-After``, a hung-then-dropped
    connection and a reset; each fires with the same probability, together *rate* per request."""
    each = 1 - (1 - rate) ** (1 / len(FAULT_KINDS))
    extra: dict[str, dict[str, Any]] = {
        "status": {"status": 503},
        "throttle": {"retry_after": 1},
        "timeout": {"latency_ms": TIMEOUT_MS},
        "reset": {},
    }
    return [
        {"route": ".", "kind": kind, "probability": each, "seed": seed * 10 + n, **extra[kind]}
        for n, kind in enumerate(FAULT_KINDS)
    ]


@dataclass
class SoakFigures:
    """What a soak did: rotations, outcomes, requests, faults, retries, and invariant checks."""

    rounds: int = 0
    rotations: int = 0  # rotation attempts (one forced rotation of one token)
    outcomes: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    max_attempts: int = 0  # the most times one request was sent in a row (1 = never retried)
    retried_requests: int = 0  # requests sent again right after a faulted try
    invariant_checks: int = 0
    problems: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # why a rotation did not happen
    seconds: float = 0.0

    @property
    def injected(self) -> int:
        return sum(self.faults.values())

    def as_counts(self) -> dict[str, int | str]:
        counts: dict[str, int | str] = {
            "rounds": self.rounds,
            "rotations": self.rotations,
            "requests": self.requests,
            "faults_injected": self.injected,
            "max_attempts": self.max_attempts,
            "retried_requests": self.retried_requests,
            "invariant_checks": self.invariant_checks,
            "problems": len(self.problems),
            "milliseconds": round(self.seconds * 1000),
        }
        counts.update({f"outcome_{k}": v for k, v in sorted(self.outcomes.items())})
        counts.update({f"fault_{k}": v for k, v in sorted(self.faults.items())})
        return counts


def _attempt_runs(entries: list[dict[str, Any]]) -> tuple[int, int]:
    """(the most tries of one request, how many requests were sent again after a faulted try).

    A request is its method and path with the query (which names the PAT of a revoke); the log
    is followed per request, so retries are found even when workers interleave. Two tokens'
    creates or verifications share a request key; a faulted one followed by another token's is
    counted as a retry, so the figures can only overstate the retries.
    """
    tries: dict[tuple[str, str], int] = {}
    faulted: dict[tuple[str, str], bool] = {}
    longest, retried = 0, 0
    for entry in entries:
        key = (str(entry["method"]), str(entry["path"]))
        if faulted.get(key):
            tries[key] += 1
            retried += 1
        else:
            tries[key] = 1
        faulted[key] = entry.get("fault") is not None
        longest = max(longest, tries[key])
    return longest, retried


def soak(fleet: Fleet, *, rotations: int, seed: int, concurrency: int = 4) -> SoakFigures:
    """Force-rotate every token of *fleet* in process (``Runtime``: real emulator, real httpx,
    real sinks) round after round with seeded faults on every route, until *rotations* were
    attempted. Between rounds the faults are lifted and invariant 1 is checked; at the end a
    clean run past the orphan margin settles everything and invariant 2 is checked too."""
    from patwarden.app.runtime import Runtime
    from patwarden.config.model import load_config

    figures = SoakFigures()
    started = time.monotonic()
    config = load_config(fleet.config)
    names = list(fleet.tokens)
    served: set[str] = set()  # tokens rotated at least once
    while figures.rotations < rotations:
        with Runtime(config=config) as runtime:
            fleet.emulator.admin("DELETE", "/requests")
            for rule in fault_rules(seed + figures.rounds):
                fleet.emulator.admin("POST", "/faults", json=rule)
            specs = runtime.specs(names)
            try:
                report = runtime.rotate(specs, force=names, concurrency=concurrency)
            finally:
                fleet.clear_faults()
            entries = fleet.emulator.admin("GET", "/requests").json()["requests"]
        figures.rounds += 1
        figures.rotations += len(specs)
        for outcome in report.outcomes:
            figures.outcomes[outcome.kind.value] = figures.outcomes.get(outcome.kind.value, 0) + 1
            if outcome.kind.value != "rotated":
                figures.failures.append(f"{outcome.token_name}: {outcome.reason}")
        figures.requests += len(entries)
        for entry in entries:
            if entry.get("fault"):
                kind = str(entry["fault"]["kind"])
                figures.faults[kind] = figures.faults.get(kind, 0) + 1
        longest, retried = _attempt_runs(entries)
        figures.max_attempts = max(figures.max_attempts, longest)
        figures.retried_requests += retried
        served.update(o.token_name for o in report.outcomes if o.kind.value == "rotated")
        for token in names:  # a token whose first rotation failed has never served anything
            figures.invariant_checks += 1
            found = fleet.serving_problems(token, allow_empty=token not in served)
            figures.problems += [f"round {figures.rounds}: {problem}" for problem in found]
    time.sleep(float(fleet.orphan_margin.rstrip("s")) + 0.2)
    with Runtime(config=load_config(fleet.config)) as runtime:
        runtime.rotate(runtime.specs(names))  # reconcile: overdue revocations, orphans
    for token in names:
        figures.invariant_checks += 1
        figures.problems += [f"settled: {p}" for p in fleet.settled_problems(token)]
    figures.seconds = time.monotonic() - started
    return figures
