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
import json
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ADO = "499b84ac-1321-427f-aa17-267ca6975798"
STARTUP_TARGET_S = 3.0
THROUGHPUT_TARGET = 500.0


def start(
    state_dir: Path, *, profile_to: Path | None
) -> tuple[subprocess.Popen[bytes], dict[str, Any], float]:
    """Start the emulator via the CLI; return the process, its ready document and start-up time."""
    ready_file = state_dir / "ready.json"
    prefix = [sys.executable]
    if profile_to is not None:
        prefix += ["-m", "cProfile", "-o", str(profile_to)]
    command = [
        *prefix,
        "-m",
        "patwarden",
        "emulator",
        "--state-dir",
        str(state_dir),
        "--ready-file",
        str(ready_file),
    ]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while not ready_file.exists():
        if process.poll() is not None:
            raise SystemExit(
                f"emulator exited early: {process.stderr.read().decode() if process.stderr else ''}"
            )
        if time.perf_counter() - started > 30:
            process.kill()
            raise SystemExit("emulator did not become ready within 30 s")
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    return process, json.loads(ready_file.read_text()), elapsed


def user_token(ready: dict[str, Any], client: httpx.Client) -> str:
    """The rotator's Azure DevOps token through the device-code flow."""
    authority = f"{ready['authority_host']}/{ready['tenant_id']}"
    client_id = ready["identities"]["public_client"]["client_id"]
    flow = (
        client.post(
            f"{authority}/oauth2/v2.0/devicecode",
            data={"client_id": client_id, "scope": f"{ADO}/.default offline_access"},
        )
        .raise_for_status()
        .json()
    )
    client.post(
        f"{ready['admin_url']}/device-codes/approve",
        json={
            "user_code": flow["user_code"],
            "username": ready["identities"]["rotator"]["username"],
        },
    ).raise_for_status()
    issued = client.post(
        f"{authority}/oauth2/v2.0/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "client_id": client_id,
            "device_code": flow["device_code"],
        },
    ).raise_for_status()
    return str(issued.json()["access_token"])


def worker(
    ready: dict[str, Any], token: str, pairs: int, deadline: float, counts: list[int], slot: int
) -> None:
    """Create then get PATs until *pairs* are done or *deadline* passes."""
    url = f"{ready['vssps_url']}/{ready['organization']}/_apis/tokens/pats"
    params = {"api-version": "7.1-preview.1"}
    headers = {"Authorization": f"Bearer {token}", "X-TFS-FedAuthRedirect": "Suppress"}
    body = {"displayName": "bench", "scope": "vso.code", "validTo": "2099-01-01T00:00:00Z"}
    with httpx.Client(verify=ready["ca_bundle"], headers=headers, timeout=30) as client:
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
        process, ready, startup = start(state_dir, profile_to=profile_to)
        try:
            with httpx.Client(verify=ready["ca_bundle"], timeout=30) as client:
                token = user_token(ready, client)
            counts = [0] * args.threads
            pairs = max(args.requests // 2 // args.threads, 1)
            began = time.perf_counter()
            deadline = began + args.max_seconds
            threads = [
                threading.Thread(target=worker, args=(ready, token, pairs, deadline, counts, slot))
                for slot in range(args.threads)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - began
        finally:
            process.send_signal(signal.SIGINT if args.profile else signal.SIGTERM)
            process.wait(timeout=30)
            if process.stderr:
                process.stderr.close()
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
