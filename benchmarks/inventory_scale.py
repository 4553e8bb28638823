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
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for tests.*
from tests.support.configs import KEY_ENV, emulator_config, user_identity
from tests.support.device_codes import login_in_process
from tests.support.emulator import start_emulator, stop_emulator

RSS_TARGET_MB = 200.0
GROWTH_TARGET_PCT = 20.0
SEED_TIMEOUT_S = 600  # seeding 40,000 users takes a while


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
        emulator = start_emulator(work / "emulator", timeout=30)
        try:
            # The auditor is the emulator's org admin; the config requires a rotator, which the
            # inventory never uses.
            auditor = {"auditor": user_identity(emulator, "org_admin")}
            config = emulator_config(
                emulator, work, identities=auditor, auditor="auditor", rotator="auditor"
            )
            login_in_process(emulator, config, "auditor")
            seeded = emulator.admin(
                "POST",
                "/seed",
                json={"users": small_users, "pats_per_user": args.pats_per_user, "seed": 1},
                timeout=SEED_TIMEOUT_S,
            ).json()
            print(f"seeded users={seeded['users']} pats={seeded['pats']} in {seeded['seconds']} s")
            small = measure(config, work, output=args.output, workers=args.workers)
            report("small", small)
            seeded = emulator.admin(
                "POST",
                "/seed",
                json={
                    "users": args.users - small_users,
                    "pats_per_user": args.pats_per_user,
                    "seed": 2,
                },
                timeout=SEED_TIMEOUT_S,
            ).json()
            print(f"seeded users={seeded['users']} pats={seeded['pats']} in {seeded['seconds']} s")
            large = measure(config, work, output=args.output, workers=args.workers)
            report("large", large)
        finally:
            stop_emulator(emulator)
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
