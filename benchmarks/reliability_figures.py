"""Run the reliability suites and publish their figures into docs/reliability.md.

Runs ``pytest tests/reliability tests/domain/test_rotation.py`` with ``RELIABILITY_FIGURES_FILE``
set, so every suite appends what it exercised (crash points, faults, concurrent runs, bad inputs,
leak scans) as JSON lines (see ``tests/reliability/figures.py``). Then sums them up and rewrites
the section between ``<!-- figures:begin -->`` and ``<!-- figures:end -->`` of
``docs/reliability.md`` (or prints it with ``--print``). With ``--soak N`` it also runs
``benchmarks/fault_soak.py --rotations N`` and publishes its figures.

    .venv/bin/python benchmarks/reliability_figures.py [--workers 2] [--soak 300] [--print]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reliability.md"
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"
SUITES = ["tests/reliability", "tests/domain/test_rotation.py"]


def run_suites(workers: int, extra: list[str], figures: Path) -> tuple[int, str, float]:
    """Run pytest; return its exit code, its summary line and the wall time."""
    argv = [sys.executable, "-m", "pytest", *SUITES, "-q", *extra]
    argv += ["-n", str(workers), "--dist", "loadgroup"] if workers > 1 else ["-p", "no:xdist"]
    env = {**os.environ, "RELIABILITY_FIGURES_FILE": str(figures)}
    started = time.monotonic()
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    lines = [line for line in result.stdout.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-6000:] + result.stderr[-2000:])
    return result.returncode, (lines[-1].strip("= ") if lines else "no summary"), elapsed


def load(figures: Path) -> list[dict[str, Any]]:
    if not figures.exists():
        return []
    return [json.loads(line) for line in figures.read_text().splitlines() if line.strip()]


def crash_rows(records: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    """(kind of crash point, exercised, survived)."""
    kinds: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for item in records:
        if item["suite"] == "crash_matrix":
            kind = "HTTP request parked at the emulator (crash matrix)"
        elif item["suite"] == "crash":
            point = str(item.get("point", ""))
            if item.get("release") == "login":
                kind = "rotator sign-in refresh (token request, cache replace)"
            elif point.startswith("state-store"):
                kind = "state-store write (SQLite pwrite, strace)"
            else:
                kind = "local rename: file sink's kept copy, sidecar, content (strace)"
        else:
            continue
        kinds[kind][0] += int(item.get("exercised", 1))
        kinds[kind][1] += int(item.get("survived", 0))
    return [(kind, counts[0], counts[1]) for kind, counts in sorted(kinds.items())]


def sums(records: list[dict[str, Any]], suite: str) -> Counter[str]:
    total: Counter[str] = Counter()
    for item in records:
        if item["suite"] == suite:
            total["records"] += 1
            for key, value in item.items():
                if isinstance(value, int) and not isinstance(value, bool):
                    total[key] += value
    return total


def bad_input_rows(records: list[dict[str, Any]]) -> list[tuple[str, int]]:
    kinds: Counter[str] = Counter()
    for item in records:
        if item["suite"] == "bad_input":
            kind = str(item.get("kind", "?"))
            group = (
                "server answer: " + kind.removeprefix("response-")
                if kind.startswith("response-")
                else kind
            )
            kinds[group] += int(item.get("tried", 1))
    return sorted(kinds.items())


def render(records: list[dict[str, Any]], code: int, summary: str, elapsed: float) -> str:
    out = [
        f"Run of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.system()} "
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}: "
        f"`{summary}` in {elapsed:.0f} s (exit {code}).",
        "",
        "| crash points | exercised | survived |",
        "|---|---:|---:|",
    ]
    rows = crash_rows(records)
    out += [f"| {kind} | {done} | {ok} |" for kind, done, ok in rows]
    out.append(f"| **total** | **{sum(r[1] for r in rows)}** | **{sum(r[2] for r in rows)}** |")
    soak = sums(records, "fault_soak")
    if soak:
        out += ["", "| in-suite fault soak | |", "|---|---:|"]
        out += [f"| {key} | {value} |" for key, value in sorted(soak.items()) if key != "records"]
    concurrency = [item for item in records if item["suite"] == "concurrency"]
    if concurrency:
        out += ["", "| concurrent runs | processes | tokens | PATs created | skipped |"]
        out.append("|---|---:|---:|---:|---:|")
        for item in concurrency:
            cells = [item.get(key, "") for key in ("test", "processes", "tokens", "creates")]
            out.append("| " + " | ".join(map(str, [*cells, item.get("skipped", "")])) + " |")
    bad = bad_input_rows(records)
    out += ["", "| bad inputs tried | count |", "|---|---:|"]
    out += [f"| {kind} | {count} |" for kind, count in bad]
    out.append(f"| **total** | **{sum(count for _, count in bad)}** |")
    secrets = sums(records, "secrets")
    out += [
        "",
        f"Leak scans: {secrets['records']} tests each searched every secret issued during the "
        f"test (PATs, access and refresh tokens, device codes, the client secret; "
        f"{secrets['secrets']} values in all) in their captured outputs and log records "
        f"({secrets['texts']}) and files ({secrets['files']}): **{secrets['leaks']} leaks "
        "found**.",
    ]
    return "\n".join(out)


def run_soak(rotations: int) -> tuple[int, dict[str, Any]]:
    """Run ``benchmarks/fault_soak.py``; return its exit code and its JSON figures."""
    argv = [sys.executable, str(ROOT / "benchmarks" / "fault_soak.py"), "--rotations"]
    result = subprocess.run(
        [*argv, str(rotations)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    start = result.stdout.find("{")
    figures: dict[str, Any] = json.loads(result.stdout[start:]) if start >= 0 else {}
    return result.returncode, figures


def render_soak(code: int, figures: dict[str, Any], elapsed: float) -> str:
    rows = [f"| {key} | {value} |" for key, value in figures.items() if not isinstance(value, list)]
    problems = figures.get("problem_list") or []
    out = [
        "",
        f"`benchmarks/fault_soak.py --rotations {figures.get('rotations', '?')}` "
        f"(exit {code}, {elapsed:.0f} s):",
        "",
        "| ≥300-rotation fault soak | |",
        "|---|---:|",
        *rows,
        f"| invariant problems | {len(problems)} |",
    ]
    return "\n".join(out)


def publish(section: str) -> None:
    text = DOC.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    DOC.write_text(text[:start] + "\n" + section + "\n" + text[end:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--print", action="store_true", help="print instead of editing the doc")
    parser.add_argument(
        "--soak", type=int, default=0, metavar="N", help="also run the fault soak with N rotations"
    )
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        figures = Path(work) / "figures.jsonl"
        code, summary, elapsed = run_suites(args.workers, args.pytest_args, figures)
        section = render(load(figures), code, summary, elapsed)
    if args.soak:
        started = time.monotonic()
        soak_code, soak_figures = run_soak(args.soak)
        section += "\n" + render_soak(soak_code, soak_figures, time.monotonic() - started)
        code = code or soak_code
    if args.print:
        print(section)
    else:
        publish(section)
        print(section)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
