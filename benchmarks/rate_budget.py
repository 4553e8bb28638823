"""A fleet rotated under Azure DevOps' real rate budget: no 429, no whole-window stall, ≥ 95 % used.

Azure DevOps lets each identity spend 200 TSTUs per sliding five-minute window before it delays
and then blocks it with 429 (https://learn.microsoft.com/azure/devops/integrate/concepts/
rate-limits). This starts ``patwarden emulator`` through the real CLI, turns its rate limiter on
at that budget (``limit`` 200, one TSTU per request) with the window shortened 10x to 30 s, so
the run takes minutes, not hours, signs the rotator in with ``patwarden login`` and runs the real
``patwarden rotate`` on ``--tokens`` fresh tokens (a Key Vault and a file sink each; Key Vault
and Entra ID are not counted against the Azure DevOps budget).

``--skew-s S`` runs ``patwarden rotate`` with its clock S seconds behind the service's: through
``tests/support/pinned_cli.py``, the clock seam every command reads "now" from (the run's
``AppContext`` clock, which the rate limiter, schedules and PAT validity checks use), so the
service's ``Date``, ``X-RateLimit-Reset`` and PAT dates are all S seconds in the client's future
(a negative S: the client's clock ahead).

From the emulator's request log (Azure DevOps routes only) it prints the 429s, the longest gap
between two consecutive Azure DevOps requests (a whole-window stall would show as ≈ the window;
where it was, and the longest once the first PAT was created, after the run's set-up),
the most requests in any window, the achieved requests per hour over the run next to the
budget's, and last ``budget_use_pct=N`` (target ≥ 95). Exit 1 when a rotation failed or a 429
came back.

    .venv/bin/python benchmarks/rate_budget.py [--tokens 300] [--skew-s 0] [--concurrency N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for tests.*
import itertools

from tests.support.clock import OFFSET, OFFSET_ENV, PINNED_CLI
from tests.support.configs import token_entry, write_config
from tests.support.emulator import RunningEmulator, start_emulator, stop_emulator

REAL_WINDOW_S = 300.0
SHORTENED = 10


def fleet_config(emulator: RunningEmulator, work: Path, *, count: int) -> Path:
    """The emulator's example config with *count* tokens, each with a Key Vault and a file sink."""
    tokens = {
        f"budget-{i:03d}": token_entry(emulator, work, f"budget-{i:03d}", group=False)
        for i in range(count)
    }
    return write_config(emulator, work, tokens=tokens)


def devops_requests(emulator: RunningEmulator, since: int) -> list[dict[str, Any]]:
    """The Azure DevOps entries of the emulator's request log after *since*, oldest first."""
    logged = emulator.admin("GET", f"/requests?since={since}", timeout=60).json()["requests"]
    return [e for e in logged if e["path"].startswith(("/devops/", "/vssps/"))]


def _seconds(entry: dict[str, Any]) -> float:
    """When the request was answered (wall clock, ms resolution)."""
    return dt.datetime.fromisoformat(entry["time"]).timestamp()


def max_in_window(times: list[float], window: float) -> int:
    """The most requests in any sliding *window* (the service counts (t - window, t])."""
    best, start = 0, 0
    for end, at in enumerate(times):
        while times[start] <= at - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=300)
    parser.add_argument(
        "--concurrency", type=int, default=None, help="workers (default: patwarden's own)"
    )
    parser.add_argument("--limit", type=int, default=200, help="TSTUs (requests) per window")
    parser.add_argument(
        "--window-s", type=float, default=REAL_WINDOW_S / SHORTENED, help="the sliding window"
    )
    parser.add_argument(
        "--skew-s", type=float, default=0.0, help="rotate's clock this far behind the service's"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="patwarden-budget-") as tmp:
        work = Path(tmp)
        emulator = start_emulator(work / "emulator", "--auto-approve-device-codes", timeout=30)
        try:
            config = fleet_config(emulator, work, count=args.tokens)
            cli = (sys.executable, "-m", "patwarden")
            login = subprocess.run(
                [*cli, "login", "--config", str(config)],
                capture_output=True,
                text=True,
                check=False,
            )
            if login.returncode != 0:
                raise SystemExit(f"login failed: {login.stderr}")
            limits = {"enabled": True, "limit": args.limit, "window_seconds": args.window_s}
            emulator.admin("PUT", "/rate-limit", json=limits)
            since = emulator.admin("GET", "/requests?since=0", timeout=60).json()["last_seq"]
            started = time.perf_counter()
            workers = [] if args.concurrency is None else ["--concurrency", str(args.concurrency)]
            behind = {OFFSET_ENV: repr(OFFSET.total_seconds() - args.skew_s)}
            result = subprocess.run(
                [
                    sys.executable,
                    str(PINNED_CLI),
                    "rotate",
                    "--config",
                    str(config),
                    "-o",
                    "json",
                    *workers,
                ],
                capture_output=True,
                text=True,
                check=False,
                env={**os.environ, **behind},
            )
            wall = time.perf_counter() - started
            logged = devops_requests(emulator, since)
        finally:
            stop_emulator(emulator)
    try:
        report = json.loads(result.stdout)
    except ValueError:
        raise SystemExit(
            f"rotate exited {result.returncode}: {result.stderr[-2000:]}{result.stdout[-2000:]}"
        ) from None
    summary = report["summary"]
    failed = args.tokens - summary.get("rotated", 0)
    throttled = sum(1 for e in logged if e["status"] == 429)
    logged.sort(key=_seconds)
    times = [_seconds(e) for e in logged]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    where = ""
    if gaps:
        i = max(range(len(gaps)), key=gaps.__getitem__)
        where = (
            f" (at +{times[i] - times[0]:.1f} s, after request {i + 1}: "
            f"{logged[i]['method']} {logged[i]['path'].split('?')[0]} -> "
            f"{logged[i + 1]['method']} {logged[i + 1]['path'].split('?')[0]})"
        )
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    achieved = (len(times) - 1) / span * 3600 if span else 0.0
    budget = args.limit / args.window_s * 3600
    pct = 100 * achieved / budget
    scale = args.window_s / REAL_WINDOW_S
    print(
        f"tokens={args.tokens} concurrency={args.concurrency or 'default'} limit={args.limit} "
        f"window_s={args.window_s:g} (real: {args.limit} TSTU per {REAL_WINDOW_S:g} s, window "
        f"shortened {REAL_WINDOW_S / args.window_s:g}x) skew_s={args.skew_s:g} "
        "(the client's clock this far behind the service's)"
    )
    print(f"rotate exit={result.returncode} wall_s={wall:.1f} summary={json.dumps(summary)}")
    print(f"failed_rotations={failed}")
    print(f"http_429={throttled}")
    print(f"longest_stall_s={max(gaps, default=0.0):.2f}{where}")
    creates = [i for i, e in enumerate(logged) if e["method"] == "POST"]
    rotating = gaps[creates[0] :] if creates else []
    print(f"longest_stall_after_first_create_s={max(rotating, default=0.0):.2f}")
    print(
        f"devops_requests={len(times)} span_s={span:.1f} requests_per_rotation="
        f"{len(times) / max(1, summary.get('rotated', 0)):.2f} "
        f"max_in_any_window={max_in_window(times, args.window_s)}/{args.limit}"
    )
    print(
        f"achieved_requests_per_hour={achieved:,.0f} budget_requests_per_hour={budget:,.0f} "
        f"(at the real window: {achieved * scale:,.0f} of {budget * scale:,.0f})"
    )
    if creates and len(times) - creates[0] > 1:
        rest = times[creates[0] :]
        rotating_pct = 100 * (len(rest) - 1) / (rest[-1] - rest[0]) * 3600 / budget
        print(f"budget_use_pct_after_first_create={rotating_pct:.1f} (after the run's set-up)")
    print(f"budget_use_pct={pct:.1f}")
    return 1 if failed or throttled else 0


if __name__ == "__main__":
    sys.exit(main())
