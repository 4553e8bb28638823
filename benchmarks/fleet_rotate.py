"""Fleet rotation: 200 tokens across 2 organizations on the emulator, at N workers and at 1.

Starts ``patwarden emulator`` through the real CLI (device codes approved automatically), adds a
second organization, signs the rotator in with ``patwarden login``, then runs the real
``patwarden rotate`` on fresh tokens (each with a Key Vault sink and a file sink): once with
``--concurrency N`` and once with ``--concurrency 1``. It does so twice: with the emulator as
fast as it goes (on a small machine both processes are then CPU-bound), and with
``--latency-ms`` added to every emulated request (the emulator's latency fault), which is closer
to real Azure, where each request takes tens to hundreds of milliseconds. For each run it prints
the wall time of the CLI process, the rotation time the run reports, rotations per second and
HTTP requests per rotation (from the emulator's request log: Entra, Azure DevOps and Key Vault).

    .venv/bin/python benchmarks/fleet_rotate.py [--tokens 200] [--concurrency 8] [--latency-ms 40]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

ORGS = ("contoso", "fabrikam")


def start_emulator(work: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start the emulator through the CLI and wait for its ready file."""
    ready_file = work / "ready.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "patwarden",
            "emulator",
            "--state-dir",
            str(work / "emulator"),
            "--ready-file",
            str(ready_file),
            "--auto-approve-device-codes",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not ready_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit("the emulator did not become ready")
        time.sleep(0.05)
    return process, json.loads(ready_file.read_text())


def admin(ready: dict[str, Any], method: str, path: str, **kwargs: Any) -> Any:
    """Call the emulator's admin API."""
    with httpx.Client(verify=ready["ca_bundle"], timeout=30) as client:
        response = client.request(method, ready["admin_url"] + path, **kwargs)
    response.raise_for_status()
    return response.json()


def write_config(ready: dict[str, Any], work: Path, *, prefix: str, count: int) -> Path:
    """The emulator's example config with *count* tokens spread over both organizations."""
    data = yaml.safe_load(Path(ready["example_config"]).read_text())
    state = work / f"state-{prefix}"
    sinks = work / f"sinks-{prefix}"
    sinks.mkdir(mode=0o700)
    data.pop("organization")
    data["organizations"] = list(ORGS)
    data["state_dir"] = str(state)
    # Every run shares one sign-in: the token cache lives outside the per-run state directory.
    data["identities"]["rotator"]["cache"]["path"] = str(work / "rotator.cache")
    data["tokens"] = {
        f"{prefix}-{i:03d}": {
            "organization": ORGS[i % len(ORGS)],
            "scopes": ["vso.code"],
            "lifetime": "30d",
            "rotate_before": "7d",
            "sinks": [
                {
                    "kind": "key_vault",
                    "vault_url": ready["key_vault_url"],
                    "secret": f"{prefix}-{i:03d}",
                    "identity": "writer",
                },
                {"kind": "file", "path": str(sinks / f"{prefix}-{i:03d}.pat")},
            ],
        }
        for i in range(count)
    }
    path = work / f"patwarden-{prefix}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    path.chmod(0o600)
    return path


@dataclass
class Run:
    """One measured `patwarden rotate`."""

    concurrency: int
    rotated: int
    wall_s: float
    rotate_s: float
    requests: Counter[str]

    latency_ms: int = 0

    def line(self) -> str:
        total = sum(self.requests.values())
        per = total / self.rotated if self.rotated else 0.0
        return (
            f"latency_ms={self.latency_ms:<3} concurrency={self.concurrency:<2} "
            f"rotated={self.rotated} wall_s={self.wall_s:.1f} "
            f"rotate_s={self.rotate_s:.1f} rotations_per_s={self.rotated / self.rotate_s:.1f} "
            f"requests={total} requests_per_rotation={per:.1f}"
        )


def _service(path: str) -> str:
    if path.startswith("/vssps/") and "/tokens/pats" in path.lower():
        return "PAT API"
    if path.startswith(("/devops/", "/vssps/")):
        return "Azure DevOps other"
    if path.startswith("/secrets"):
        return "Key Vault"
    return "Entra ID"


def rotate(ready: dict[str, Any], config: Path, *, concurrency: int) -> Run:
    """Run `patwarden rotate` once and measure it."""
    since = admin(ready, "GET", "/requests?since=0")["last_seq"]
    started = time.perf_counter()
    result = subprocess.run(
        [
            *(sys.executable, "-m", "patwarden", "rotate", "--config", str(config)),
            *("-o", "json", "--concurrency", str(concurrency)),
        ],
        capture_output=True,
        text=True,
        check=False,
        env=os.environ.copy(),
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(
            f"rotate exited {result.returncode}: {result.stderr}{result.stdout[-2000:]}"
        )
    report = json.loads(result.stdout)
    logged = admin(ready, "GET", f"/requests?since={since}")["requests"]
    return Run(
        concurrency=concurrency,
        rotated=report["summary"].get("rotated", 0),
        wall_s=wall,
        rotate_s=report["seconds"],
        requests=Counter(_service(entry["path"]) for entry in logged),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency-ms", type=int, default=40, help="0 skips the latency runs")
    args = parser.parse_args()
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="patwarden-fleet-") as tmp:
        work = Path(tmp)
        process, ready = start_emulator(work)
        try:
            admin(ready, "POST", "/organizations", json={"name": ORGS[1]})
            latencies = [0] + ([args.latency_ms] if args.latency_ms else [])
            configs = {
                (latency, workers): write_config(
                    ready, work, prefix=f"l{latency}-c{workers}", count=args.tokens
                )
                for latency in latencies
                for workers in (args.concurrency, 1)
            }
            login = subprocess.run(
                [sys.executable, "-m", "patwarden", "login", "--config", str(configs[0, 1])],
                capture_output=True,
                text=True,
                check=False,
            )
            if login.returncode != 0:
                raise SystemExit(f"login failed: {login.stderr}")
            for (latency, workers), config in configs.items():
                admin(ready, "DELETE", "/faults")
                if latency:
                    rule = {"route": ".", "kind": "latency", "latency_ms": latency}
                    admin(ready, "POST", "/faults", json=rule)
                run = rotate(ready, config, concurrency=workers)
                run.latency_ms = latency
                runs.append(run)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=15)
    print(f"tokens={args.tokens} organizations={len(ORGS)} sinks_per_token=2 (Key Vault, file)")
    for run in runs:
        print(run.line())
        by_service = ", ".join(f"{k}={v}" for k, v in sorted(run.requests.items()))
        print(f"  requests by service: {by_service}")
    for wide, one in zip(runs[::2], runs[1::2], strict=True):
        print(
            f"latency_ms={wide.latency_ms}: concurrency {wide.concurrency} is "
            f"{one.rotate_s / wide.rotate_s:.2f}x as fast as concurrency 1"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
