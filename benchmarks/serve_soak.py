"""Soak test of ``patwarden serve``: 200 tokens with lifetimes of minutes, rotating for 20+ min.

Starts the emulator through the real CLI (device codes approved automatically), writes a config
with ``--tokens`` tokens (file sinks, ``lifetime: 10m``, ``rotate_before: 2m``, ``jitter: 1m``,
so every token is due 7-8 minutes after each issue), signs the rotator in with ``patwarden
login``, then runs ``patwarden serve`` for ``--minutes`` and watches it from outside: every few
seconds it scrapes ``/metrics`` (parsed with ``prometheus_client.parser``) and reads the
service's RSS from ``/proc``. A rotation is *late* when a token's due time passed more than
``--late-after`` seconds ago without a rotation, *missed* when a current PAT expired. Prints::

    rotations_done=N late_rotations=N missed_rotations=N failed_runs=N
    rss_start_mib=X rss_after_first_cycle_mib=Y rss_end_mib=Z
    rss_growth_pct=P          (end vs after the first cycle; target < 10)

Not part of the test suite. Run it in the background, e.g.::

    nohup .venv/bin/python benchmarks/serve_soak.py --minutes 22 > /tmp/serve_soak.out 2>&1 &
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for tests.*
from tests.support.configs import sink_dir, write_config
from tests.support.emulator import RunningEmulator, start_emulator, stop_emulator


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def soak_config(emulator: RunningEmulator, work: Path, *, count: int, port: int) -> Path:
    sinks = sink_dir(work)
    tokens = {
        f"soak-{i:03d}": {
            "scopes": ["vso.code"],
            "lifetime": "10m",
            "rotate_before": "2m",
            "jitter": "1m",
            "revoke_after": "0s",
            "sinks": [{"kind": "file", "path": str(sinks / f"soak-{i:03d}.pat")}],
        }
        for i in range(count)
    }
    return write_config(
        emulator,
        work,
        tokens=tokens,
        rotation={"concurrency": 8},
        service={
            "listen": f"127.0.0.1:{port}",
            "check_interval": "2m",
            "check_jitter": "10s",
            "sign_in_check": "5m",
        },
    )


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def scrape(client: httpx.Client, url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = client.get(url + "/metrics").text
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


def value(
    metrics: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str
) -> float:
    return sum(
        v for found, v in metrics.get(name, []) if all(found.get(k) == x for k, x in labels.items())
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=22.0)
    parser.add_argument("--late-after", type=float, default=60.0)
    parser.add_argument("--keep", metavar="DIR", help="work here and keep it (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="patwarden-soak-") as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        emulator = start_emulator(work / "emulator", "--auto-approve-device-codes", timeout=30)
        try:
            return soak(emulator, work, args)
        finally:
            stop_emulator(emulator)


def soak(emulator: RunningEmulator, work: Path, args: argparse.Namespace) -> int:
    port = free_port()
    config = soak_config(emulator, work, count=args.tokens, port=port)
    cli = [sys.executable, "-m", "patwarden"]
    login = subprocess.run(
        [*cli, "login", "--config", str(config)], capture_output=True, text=True, check=False
    )
    if login.returncode != 0:
        raise SystemExit(f"login failed: {login.stderr}")
    log = (work / "serve.log").open("w")
    serve = subprocess.Popen(
        [*cli, "serve", "--config", str(config), "--log-format", "json"],
        stdout=log,
        stderr=log,
        env=os.environ.copy(),
    )
    url = f"http://127.0.0.1:{port}"
    late: set[tuple[str, float]] = set()
    missed: set[tuple[str, float]] = set()
    rss_start = rss_first = float("nan")
    first_seen: dict[str, float] = {}  # token -> expiry of its first PAT
    started = time.monotonic()
    end = started + args.minutes * 60
    metrics: dict[str, list[tuple[dict[str, str], float]]] = {}
    try:
        with httpx.Client(timeout=10) as client:
            while time.monotonic() < end:
                time.sleep(5)
                if serve.poll() is not None:
                    raise SystemExit(
                        f"serve exited with {serve.returncode}; see {work / 'serve.log'}"
                    )
                try:
                    metrics = scrape(client, url)
                except httpx.HTTPError:
                    continue
                if rss_start != rss_start:  # nan: the first successful scrape
                    rss_start = rss_mib(serve.pid)
                now = time.time()
                expiries = {
                    found["token"]: v
                    for found, v in metrics.get("patwarden_token_expiry_timestamp_seconds", [])
                }
                for labels, due in metrics.get(
                    "patwarden_token_next_rotation_timestamp_seconds", []
                ):
                    if now > due + args.late_after:
                        late.add((labels["token"], due))
                for token, expiry in expiries.items():
                    first_seen.setdefault(token, expiry)
                    if now > expiry:
                        missed.add((token, expiry))
                cycled = [t for t, e in expiries.items() if e != first_seen.get(t)]
                if (
                    rss_first != rss_first
                    and len(expiries) >= args.tokens
                    and len(cycled) >= args.tokens
                ):
                    rss_first = rss_mib(serve.pid)
                    print(f"first cycle done after {time.monotonic() - started:.0f} s", flush=True)
        rss_end = rss_mib(serve.pid)
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            code = serve.wait(timeout=60)
        except subprocess.TimeoutExpired:
            serve.kill()
            code = -9
        log.close()
    rotated = value(metrics, "patwarden_rotations_total", outcome="rotated")
    failed = value(metrics, "patwarden_rotations_total", outcome="failed") + value(
        metrics, "patwarden_rotations_total", outcome="rolled_back"
    )
    growth = (rss_end - rss_first) / rss_first * 100
    print(f"tokens={args.tokens} minutes={args.minutes:g} lifetime=10m rotate_before=2m jitter=1m")
    print(
        f"rotations_done={rotated:.0f} late_rotations={len(late)} "
        f"missed_rotations={len(missed)} failed_runs={failed:.0f}"
    )
    requests = value(metrics, "patwarden_requests_total", service="azure_devops")
    print(f"azure_devops_requests={requests:.0f}")
    print(
        f"rss_start_mib={rss_start:.1f} rss_after_first_cycle_mib={rss_first:.1f} "
        f"rss_end_mib={rss_end:.1f}"
    )
    print(f"serve_exit_code_after_sigterm={code}")
    print(f"rss_growth_pct={growth:.1f}")
    return 0 if not late and not missed and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
