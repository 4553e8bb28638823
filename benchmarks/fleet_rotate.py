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
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for tests.*
from tests.support.configs import token_entry, write_config
from tests.support.emulator import RunningEmulator, start_emulator, stop_emulator

ORGS = ("contoso", "fabrikam")


def fleet_config(emulator: RunningEmulator, work: Path, *, prefix: str, count: int) -> Path:
    """The emulator's example config with *count* tokens spread over both organizations, each
    with a Key Vault sink and a file sink; its own state in ``work / prefix``."""
    directory = work / prefix
    directory.mkdir()
    tokens = {
        f"{prefix}-{i:03d}": token_entry(
            emulator, directory, f"{prefix}-{i:03d}", group=False, organization=ORGS[i % len(ORGS)]
        )
        for i in range(count)
    }
    return write_config(
        emulator,
        directory,
        tokens=tokens,
        organizations=list(ORGS),
        # Every run shares one sign-in: the token cache lives outside the per-run state directory.
        rotator_settings={"cache": {"path": str(work / "rotator.cache")}},
    )


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


def rotate(emulator: RunningEmulator, config: Path, *, concurrency: int) -> Run:
    """Run `patwarden rotate` once and measure it."""
    since = emulator.admin("GET", "/requests?since=0", timeout=30).json()["last_seq"]
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
    logged = emulator.admin("GET", f"/requests?since={since}", timeout=30).json()["requests"]
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
        emulator = start_emulator(work / "emulator", "--auto-approve-device-codes", timeout=30)
        try:
            emulator.admin("POST", "/organizations", json={"name": ORGS[1]})
            latencies = [0] + ([args.latency_ms] if args.latency_ms else [])
            configs = {
                (latency, workers): fleet_config(
                    emulator, work, prefix=f"l{latency}-c{workers}", count=args.tokens
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
                emulator.admin("DELETE", "/faults")
                if latency:
                    rule = {"route": ".", "kind": "latency", "latency_ms": latency}
                    emulator.admin("POST", "/faults", json=rule)
                run = rotate(emulator, config, concurrency=workers)
                run.latency_ms = latency
                runs.append(run)
        finally:
            stop_emulator(emulator)
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
