"""Steady state: a `patwarden rotate` with nothing due must not get slower as the audit grows.

Starts ``patwarden emulator`` through the real CLI (device codes approved automatically), signs
the rotator in with ``patwarden login`` and writes a config of ``--tokens`` tokens, each with a
file sink (``--key-vault`` adds a Key Vault sink). It times one fresh ``patwarden rotate`` (every
token rotates), then copies that state once per ``--sizes`` entry and grows each copy's audit log
to its size by seeding rows straight into the SQLite file (realistic kinds spread over the tokens,
times over the last year). It times a nothing-due ``patwarden rotate`` on each copy, the sizes
alternating run after run (median of ``--repeat`` runs per size, wall time of the CLI process, after
one warm-up run each). Every run must leave every token as it was (exit 0, nothing rotated).

Prints one line per size, the fresh rotation's time, the ratio ``nothing_due/fresh_rotation``
(the nothing-due run at the largest size; target <= 0.10) and last ``history_growth_pct=N``: how
much slower the nothing-due run is at the largest size than at the smallest (target <= 10).
``--profile`` runs one more nothing-due run under cProfile and prints where it spends its time.

    .venv/bin/python benchmarks/steady_state.py [--tokens 1000] [--sizes 10000,25000,50000,100000]
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for tests.*
from tests.support.configs import sink_dir, write_config
from tests.support.emulator import RunningEmulator, start_emulator, stop_emulator

# What a year of rotations leaves in the audit log, roughly in these proportions.
KINDS = (
    ("operation_done", 30),
    ("promoted", 30),
    ("revoked_previous", 30),
    ("orphan_revoked", 3),
    ("revoke_deferred", 3),
    ("hook_failed", 2),
    ("sign_in_ok", 1),
    ("sign_in_failed", 1),
)


def config(emulator: RunningEmulator, work: Path, directory: Path, count: int, **kw: bool) -> Path:
    """The emulator's example config with *count* tokens, each with a file sink in
    ``work / "sinks"`` (and a Key Vault sink if asked); its state in ``directory / "state"``, the
    rotator's token cache shared in ``work``."""
    key_vault = kw.get("key_vault", False)
    sinks = sink_dir(work)
    tokens: dict[str, Any] = {}
    for i in range(count):
        name = f"svc-{i:04d}"
        token_sinks: list[dict[str, Any]] = [{"kind": "file", "path": str(sinks / f"{name}.pat")}]
        if key_vault:
            token_sinks.append(
                {
                    "kind": "key_vault",
                    "vault_url": emulator["key_vault_url"],
                    "secret": f"{name}-pat",
                    "identity": "writer",
                }
            )
        tokens[name] = {
            "scopes": ["vso.code"],
            "lifetime": "30d",
            "rotate_before": "7d",
            "revoke_after": "1d",
            "sinks": token_sinks,
        }
    directory.mkdir(mode=0o700, exist_ok=True)
    cache = {"cache": {"path": str(work / "rotator.cache")}}
    return write_config(emulator, directory, tokens=tokens, rotator_settings=cache)


def copy_state(source: Path, target: Path) -> Path:
    """Copy the state directory *source* to *target* (the database through SQLite's backup)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("state.db*", "*.locks"))
    src = sqlite3.connect(source / "state.db")
    dst = sqlite3.connect(target / "state.db")
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    (target / "state.db").chmod(0o600)
    return target / "state.db"


def rotate(
    path: Path, *, python: tuple[str, ...] = (sys.executable,)
) -> tuple[float, dict[str, Any]]:
    """Run `patwarden rotate` once; its wall time and JSON report (exit 0 required)."""
    started = time.perf_counter()
    result = subprocess.run(
        [*python, "-m", "patwarden", "rotate", "--config", str(path), "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        env=os.environ.copy(),
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"rotate exited {result.returncode}: {result.stderr[-2000:]}")
    return wall, json.loads(result.stdout)


def audit_rows(state: Path) -> int:
    conn = sqlite3.connect(state)
    try:
        return int(conn.execute("SELECT count(*) FROM audit").fetchone()[0])
    finally:
        conn.close()


def grow_audit(state: Path, names: list[str], target: int, rng: random.Random) -> None:
    """Append audit rows until the log holds *target*: realistic kinds over the tokens, times
    over the last year, in one transaction (what a year of runs would have appended)."""
    missing = target - audit_rows(state)
    if missing <= 0:
        return
    kinds = [k for k, _ in KINDS]
    weights = [w for _, w in KINDS]
    now = datetime.now(UTC)
    rows: list[tuple[str, str, str | None, str | None, str | None, str]] = []
    for _ in range(missing):
        kind = rng.choices(kinds, weights)[0]
        at = now - timedelta(seconds=rng.randrange(365 * 86400))
        if kind.startswith("sign_in"):
            detail = {"identity": "rotator", "reason": None}
            rows.append((at.isoformat(), kind, None, None, None, json.dumps(detail)))
            continue
        op_id = f"{rng.getrandbits(128):032x}"
        pat_id = f"{rng.getrandbits(128):032x}"
        detail = {"detail": "seeded by benchmarks/steady_state.py", "organization": "contoso"}
        rows.append((at.isoformat(), kind, rng.choice(names), op_id, pat_id, json.dumps(detail)))
    conn = sqlite3.connect(state)
    try:
        with conn:
            conn.executemany(
                "INSERT INTO audit (at, kind, token_name, operation_id, authorization_id, detail)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
    finally:
        conn.close()


def nothing_due(path: Path, tokens: int) -> float:
    wall, report = rotate(path)
    summary = report["summary"]
    if summary.get("not_due") != tokens:
        raise SystemExit(f"expected {tokens} tokens not due, got {summary}")
    return wall


# Runs `python -m patwarden ...` with every thread under cProfile (the fleet's workers do the
# work), the profiles merged into one file at exit.
_PROFILED = """
import atexit, cProfile, pstats, runpy, sys, threading
out, profiles = sys.argv.pop(1), []
run = threading.Thread.run
def profiled(self):
    profile = cProfile.Profile()
    profiles.append(profile)
    profile.runcall(run, self)
threading.Thread.run = profiled
main = cProfile.Profile()
profiles.append(main)
def dump():
    main.disable()
    stats = pstats.Stats(profiles[0])
    for profile in profiles[1:]:
        stats.add(profile)
    stats.dump_stats(out)
atexit.register(dump)
main.enable()
sys.argv = ["patwarden", *sys.argv[3:]]  # drop "-m patwarden"
runpy.run_module("patwarden", run_name="__main__")
"""


def profile(path: Path, work: Path) -> None:
    """One more nothing-due run, every thread under cProfile: the biggest costs."""
    out = work / "rotate.prof"
    rotate(path, python=(sys.executable, "-c", _PROFILED, str(out)))
    stats = pstats.Stats(str(out))
    stats.sort_stats("cumulative").print_stats(20)
    stats.sort_stats("tottime").print_stats(15)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--sizes", default="10000,25000,50000,100000", help="audit rows")
    parser.add_argument("--repeat", type=int, default=3, help="nothing-due runs per size")
    parser.add_argument("--key-vault", action="store_true", help="a Key Vault sink too")
    parser.add_argument("--profile", action="store_true", help="profile the last size's run")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    rng = random.Random(16)
    runs: dict[int, list[float]] = {size: [] for size in sizes}
    with tempfile.TemporaryDirectory(prefix="patwarden-steady-") as tmp:
        work = Path(tmp)
        emulator = start_emulator(work / "emulator", "--auto-approve-device-codes", timeout=30)
        try:
            shape = {"key_vault": args.key_vault}
            fresh_config = config(emulator, work, work / "fresh", args.tokens, **shape)
            login = subprocess.run(
                [sys.executable, "-m", "patwarden", "login", "--config", str(fresh_config)],
                capture_output=True,
                text=True,
                check=False,
            )
            if login.returncode != 0:
                raise SystemExit(f"login failed: {login.stderr}")
            fresh, report = rotate(fresh_config)
            if report["summary"].get("rotated") != args.tokens:
                raise SystemExit(f"the fresh run did not rotate every token: {report['summary']}")
            names = [f"svc-{i:04d}" for i in range(args.tokens)]
            print(
                f"tokens={args.tokens} sinks_per_token={2 if args.key_vault else 1} "
                f"({'file, Key Vault' if args.key_vault else 'file'}) audit_rows_after_fresh_run="
                f"{audit_rows(work / 'fresh' / 'state' / 'state.db')}",
                flush=True,
            )
            # One copy of the state per size, each grown to its size; the nothing-due runs then
            # alternate between the sizes, so a busy moment of the machine hits every size alike.
            configs: dict[int, Path] = {}
            for size in sizes:
                directory = work / f"rows-{size}"
                configs[size] = config(emulator, work, directory, args.tokens, **shape)
                state = copy_state(work / "fresh" / "state", directory / "state")
                grow_audit(state, names, size, rng)
                nothing_due(configs[size], args.tokens)  # warm-up (page cache, bytecode)
            for _ in range(args.repeat):
                for size in sizes:
                    runs[size].append(nothing_due(configs[size], args.tokens))
            for size in sizes:
                rows = audit_rows(work / f"rows-{size}" / "state" / "state.db")
                print(
                    f"audit_rows={rows} nothing_due_s={statistics.median(runs[size]):.2f} "
                    f"(median of {len(runs[size])}: {', '.join(f'{r:.2f}' for r in runs[size])})",
                    flush=True,
                )
            if args.profile:
                profile(configs[sizes[-1]], work)
        finally:
            stop_emulator(emulator)
    timings = {size: statistics.median(times) for size, times in runs.items()}
    largest, smallest = timings[sizes[-1]], timings[sizes[0]]
    print(f"fresh_rotation_s={fresh:.2f}")
    print(f"nothing_due/fresh_rotation={largest / fresh:.3f} (target <= 0.10)")
    print(f"history_growth_pct={(largest - smallest) / smallest * 100:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
