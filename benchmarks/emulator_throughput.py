"""Emulator start-up time and PAT create+get throughput over real HTTPS.

Starts ``patwarden emulator`` through the real CLI in a temporary state directory, measures the
time from process start to the ready file (target < 3 s), signs the rotator in with the real
device-code flow (approved through the admin API), then runs PAT create + get pairs from a few
threads, each with its own keep-alive httpx client (target >= 500 requests/s on 2 cores). Prints
``startup_s=…`` and ``requests_per_s=…``; ``--profile`` also runs the emulator under cProfile and
prints its hottest functions. The request loop is bounded by ``--requests`` and ``--max-seconds``.

    .venv/bin/python benchmarks/emulator_throughput.py [--threads 4] [--requests 2000]
"""

from __future__ import annotations

import argparse
import os
import pstats
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for tests.*
from tests.support.device_codes import device_code_token
from tests.support.emulator import RunningEmulator, start_emulator, stop_emulator

STARTUP_TARGET_S = 3.0
THROUGHPUT_TARGET = 500.0


def start(state_dir: Path, *, profile_to: Path | None) -> tuple[RunningEmulator, float]:
    """Start the emulator via the CLI; return it and its start-up time (to the ready file)."""
    python = [sys.executable]
    if profile_to is not None:
        python += ["-m", "cProfile", "-o", str(profile_to)]
    started = time.perf_counter()
    emulator = start_emulator(state_dir, timeout=30, python=python)
    return emulator, time.perf_counter() - started


def worker(
    emulator: RunningEmulator,
    token: str,
    pairs: int,
    deadline: float,
    counts: list[int],
    slot: int,
) -> None:
    """Create then get PATs until *pairs* are done or *deadline* passes."""
    url = f"{emulator['vssps_url']}/{emulator['organization']}/_apis/tokens/pats"
    params = {"api-version": "7.1-preview.1"}
    headers = {"Authorization": f"Bearer {token}", "X-TFS-FedAuthRedirect": "Suppress"}
    body = {"displayName": "bench", "scope": "vso.code", "validTo": "2099-01-01T00:00:00Z"}
    with httpx.Client(verify=emulator.ca_bundle, headers=headers, timeout=30) as client:
        for _ in range(pairs):
            if time.perf_counter() > deadline:
                return
            created = client.post(url, params=params, json=body).raise_for_status().json()
            auth_id = created["patToken"]["authorizationId"]
            got = client.get(url, params={**params, "authorizationId": auth_id})
            if got.raise_for_status().json()["patTokenError"] != "none":
                raise SystemExit(f"unexpected get result: {got.text}")
            counts[slot] += 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--requests", type=int, default=2000, help="total requests (create+get)")
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--profile", action="store_true", help="run the emulator under cProfile")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="patwarden-bench-") as tmp:
        state_dir = Path(tmp) / "state"
        state_dir.mkdir(mode=0o700)
        profile_to = Path(tmp) / "emulator.prof" if args.profile else None
        emulator, startup = start(state_dir, profile_to=profile_to)
        try:
            token = device_code_token(emulator)
            counts = [0] * args.threads
            pairs = max(args.requests // 2 // args.threads, 1)
            began = time.perf_counter()
            deadline = began + args.max_seconds
            threads = [
                threading.Thread(
                    target=worker, args=(emulator, token, pairs, deadline, counts, slot)
                )
                for slot in range(args.threads)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - began
        finally:
            stop_emulator(emulator, signal.SIGINT if args.profile else signal.SIGTERM)
        rate = sum(counts) / elapsed
        print(f"startup_s={startup:.3f} (target < {STARTUP_TARGET_S})")
        print(f"requests={sum(counts)} threads={args.threads} seconds={elapsed:.2f}")
        print(f"requests_per_s={rate:.1f} (target >= {THROUGHPUT_TARGET:.0f})")
        if profile_to is not None and profile_to.exists():
            pstats.Stats(str(profile_to)).sort_stats("tottime").print_stats(30)
    return 0


if __name__ == "__main__":
    os.environ.pop("PATWARDEN_CONFIG", None)
    sys.exit(main())
