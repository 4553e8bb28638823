"""`patwarden inventory` at scale: 10,000 users x 5 PATs on the emulator, memory must stay flat.

Starts ``patwarden emulator`` through the real CLI, signs the auditor (the emulator's org admin, a
Project Collection Administrator) in with the real device-code flow (approved through the admin
API), then measures the real ``patwarden inventory`` process twice:

1. after seeding ``--users / 5`` users (10,000 PATs by default), and
2. after seeding the rest (50,000 PATs by default),

each time streaming the whole inventory to a JSON file (``--output html`` to test the HTML path).
For each run it prints PATs/s, the requests the CLI made and its peak RSS (``ru_maxrss`` of the
child process from ``wait4``), then the growth between the runs, and last ``peak_rss_mb=N``.
Targets: peak RSS under 200 MB; growth from 10k to 50k PATs at most 20 %.

    .venv/bin/python benchmarks/inventory_scale.py [--users 10000] [--pats-per-user 5]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

RSS_TARGET_MB = 200.0
GROWTH_TARGET_PCT = 20.0
KEY_ENV = "PATWARDEN_CACHE_KEY"


@dataclass(frozen=True)
class Run:
    """One measured inventory run."""

    pats: int
    seconds: float
    requests: int
    peak_rss_mb: float

    @property
    def pats_per_s(self) -> float:
        return self.pats / self.seconds if self.seconds else 0.0


def start_emulator(state_dir: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start the emulator via the CLI and return it with its ready document."""
    ready_file = state_dir / "ready.json"
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
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not ready_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit("the emulator did not start")
        time.sleep(0.05)
    return process, json.loads(ready_file.read_text())


def admin(ready: dict[str, Any], method: str, path: str, **kwargs: Any) -> Any:
    """Call the emulator's admin API."""
    from patwarden.tls import ssl_context

    with httpx.Client(verify=ssl_context(ready["ca_bundle"]), timeout=600) as client:
        response = client.request(method, ready["admin_url"] + path, **kwargs)
    response.raise_for_status()
    return response.json()


def write_config(ready: dict[str, Any], work: Path) -> Path:
    """A patwarden.yaml whose auditor is the emulator's org admin user."""
    ids = ready["identities"]
    config = {
        "azure": {
            "authority_host": ready["authority_host"],
            "azure_devops_url": ready["azure_devops_url"],
            "vssps_url": ready["vssps_url"],
            "tenant_id": ready["tenant_id"],
            "ca_bundle": ready["ca_bundle"],
        },
        "organization": ready["organization"],
        "state_dir": str(work / "state"),
        "identities": {
            "auditor": {
                "kind": "user",
                "client_id": ids["public_client"]["client_id"],
                "username": ids["org_admin"]["username"],
                "cache": {"key": {"env": KEY_ENV}},
            }
        },
        "auditor": "auditor",
        "rotator": "auditor",  # the config requires one; the inventory never uses it
    }
    path = work / "patwarden.yaml"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


class _Approver(io.StringIO):
    """Approves the device code Entra prints, as the human at the browser would."""

    def __init__(self, ready: dict[str, Any]) -> None:
        super().__init__()
        self.ready = ready

    def write(self, text: str) -> int:
        written = super().write(text)
        if "code" in text:
            username = self.ready["identities"]["org_admin"]["username"]
            for code in admin(self.ready, "GET", "/device-codes")["value"]:
                body = {"user_code": code["user_code"], "username": username}
                admin(self.ready, "POST", "/device-codes/approve", json=body)
        return written


def login(ready: dict[str, Any], config: Path) -> None:
    """Sign the auditor in once (device code), leaving an encrypted cache for the CLI."""
    from patwarden.config import load_config
    from patwarden.identity.credential_set import CredentialSet

    credentials = CredentialSet(load_config(config))
    credentials.user("auditor").login(out=_Approver(ready), timeout=60)
    credentials.close()


_WROTE = re.compile(r"Wrote (\d+) PAT\(s\).*\((\d+) requests, ([\d.]+) s\)")


def measure(config: Path, work: Path, *, output: str, workers: int) -> Run:
    """Run `patwarden inventory` once; return its PAT count, time, requests and peak RSS."""
    target = work / f"inventory.{output}"
    command = [
        sys.executable,
        "-m",
        "patwarden",
        "inventory",
        "--config",
        str(config),
        "--workers",
        str(workers),
        "--output",
        output,
        str(target),
    ]
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    assert process.stderr is not None
    stderr = process.stderr.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    process.stderr.close()
    found = _WROTE.search(stderr)
    if process.returncode != 0 or found is None:
        raise SystemExit(f"inventory failed (exit {process.returncode}):\n{stderr}")
    return Run(
        pats=int(found.group(1)),
        seconds=elapsed,
        requests=int(found.group(2)),
        peak_rss_mb=usage.ru_maxrss / 1024,  # Linux reports kilobytes
    )


def report(label: str, run: Run) -> None:
    """Print one run's figures."""
    print(
        f"{label}: pats={run.pats} seconds={run.seconds:.1f} pats_per_s={run.pats_per_s:.0f} "
        f"requests={run.requests} peak_rss_mb={run.peak_rss_mb:.1f}",
        flush=True,
    )


def main() -> int:
    """Seed, measure twice, compare, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--pats-per-user", type=int, default=5)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--output", choices=("json", "csv", "html"), default="json")
    args = parser.parse_args()

    from patwarden.identity.cache_crypto import generate_cache_key

    os.environ[KEY_ENV] = generate_cache_key().reveal()
    small_users = max(1, args.users // 5)
    with tempfile.TemporaryDirectory(prefix="patwarden-inventory-bench-") as tmp:
        work = Path(tmp)
        (work / "emulator").mkdir()
        emulator, ready = start_emulator(work / "emulator")
        try:
            config = write_config(ready, work)
            login(ready, config)
            seeded = admin(
                ready,
                "POST",
                "/seed",
                json={"users": small_users, "pats_per_user": args.pats_per_user, "seed": 1},
            )
            print(f"seeded users={seeded['users']} pats={seeded['pats']} in {seeded['seconds']} s")
            small = measure(config, work, output=args.output, workers=args.workers)
            report("small", small)
            seeded = admin(
                ready,
                "POST",
                "/seed",
                json={
                    "users": args.users - small_users,
                    "pats_per_user": args.pats_per_user,
                    "seed": 2,
                },
            )
            print(f"seeded users={seeded['users']} pats={seeded['pats']} in {seeded['seconds']} s")
            large = measure(config, work, output=args.output, workers=args.workers)
            report("large", large)
        finally:
            emulator.send_signal(signal.SIGTERM)
            emulator.wait(timeout=30)
    growth = (large.peak_rss_mb / small.peak_rss_mb - 1) * 100
    ok_rss = large.peak_rss_mb < RSS_TARGET_MB
    ok_growth = growth <= GROWTH_TARGET_PCT
    verdict = "ok" if ok_growth else "MISSED"
    print(f"rss_growth_pct={growth:.1f} (target <= {GROWTH_TARGET_PCT:.0f}): {verdict}")
    print(f"peak RSS target < {RSS_TARGET_MB:.0f} MB: {'ok' if ok_rss else 'MISSED'}")
    print(f"peak_rss_mb={large.peak_rss_mb:.0f}")
    return 0 if ok_rss and ok_growth else 1


if __name__ == "__main__":
    sys.exit(main())
