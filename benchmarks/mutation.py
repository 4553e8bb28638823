"""Mutation testing of the rotation core: plant small bugs, count how many the tests catch.

A small AST mutator of our own (``mutation_ops.py``; mutmut 3 mutates ``src/`` in place and
trampolines every function, this one never touches the working tree): each mutant is written
into a private copy of ``src/`` put first on ``PYTHONPATH`` (subprocesses the tests start
inherit it), and the tests that cover it run with ``-x``: a failing run kills the mutant, and so
does a timeout (three times the tests' traced time, plus 20 s).

Targets: ``src/patwarden/domain/``, the engine (every module of ``src/patwarden/rotation/``) and
the state store's core (``state/sqlite.py``, ``state/codec.py``, ``state/dump.py``). The test pool
is ``tests/domain``, ``tests/rotation`` and the store's tests; one traced run of the pool
(``mutation_trace.py``, cached by the text of ``src/`` and ``tests/``) records which tests execute
which lines. A mutant runs the tests that execute its lines, the quickest first; a mutant on a line
no test executes in-process (module-level code, run at import) runs every test that executes any
line of its file, and the tests of its mirror (``tests/x/test_y.py`` for ``src/patwarden/x/y.py``).

Message-only mutants (strings that are only text for people) and the mutants listed in
``mutation_equivalent.txt`` (by stable id, each with its reason) are listed, never run, never
scored. ``--sample N`` takes the N behaviour mutants whose ids hash first under ``--seed``: a
mutant's place in the sample does not depend on how many others there are. ``--results FILE``
keeps verdicts between runs: a run skips mutants already there (``--retry-survivors`` reruns the
survivors), so a large sample runs in chunks of ``--budget`` seconds.

    .venv/bin/python benchmarks/mutation.py --sample 300 --seed 17 --budget 900 \\
        --results /tmp/mutation-17.jsonl     # repeat until "0 left"; the figures print each time
    .venv/bin/python benchmarks/mutation.py --list       # every mutant with its id
    .venv/bin/python benchmarks/mutation.py --only ID    # rerun one mutant

The last line printed is ``mutation_score=N`` (killed / scored, in percent; message-only and
listed equivalent mutants are not scored).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mutation_ops import Mutant, change, mutants, mutated_source

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
TARGETS = (
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "src/patwarden/domain").glob("*.py")),
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "src/patwarden/rotation").glob("*.py")),
    "src/patwarden/state/sqlite.py",
    "src/patwarden/state/codec.py",
    "src/patwarden/state/dump.py",
)
POOL = (
    "tests/domain",
    "tests/rotation",
    "tests/state/test_sqlite.py",
    "tests/state/test_contract.py",
    "tests/state/test_codec.py",
    "tests/state/test_dump.py",
)
PYTEST_ARGS = ("-q", "-p", "no:randomly", "-p", "no:cacheprovider")
EQUIVALENT = HERE / "mutation_equivalent.txt"
_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)


def equivalents() -> dict[str, str]:
    """The listed equivalent mutants: id -> reason (``ID  # reason`` per line)."""
    listed = {}
    for line in EQUIVALENT.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, reason = line.partition("  # ")
            listed[key.strip()] = reason.strip()
    return listed


def _tree_digest(src: Path) -> str:
    digest = hashlib.sha256()
    for root in (src, ROOT / "tests", HERE / "mutation_trace.py"):
        for path in sorted(root.rglob("*.py")) if root.is_dir() else [root]:
            digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def trace(src: Path, files: list[str]) -> dict[str, dict[str, Any]]:
    """Per test of the pool (run order): outcome, seconds, lines of ``files`` it executes."""
    cache = Path(tempfile.gettempdir()) / f"patwarden-mutation-trace-{_tree_digest(src)}.json"
    if cache.exists():
        traced: dict[str, dict[str, Any]] = json.loads(cache.read_text())
        return traced
    print("tracing which tests execute which lines (one run of the pool) ...", flush=True)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join((str(src), str(HERE))),
        PYTHONDONTWRITEBYTECODE="1",
        MUTATION_TRACE_SRC=str(src),
        MUTATION_TRACE_FILES=os.pathsep.join(files),
        MUTATION_TRACE_OUT=f"{cache}.{os.getpid()}",
    )
    argv = [sys.executable, "-m", "pytest", *PYTEST_ARGS, "-p", "mutation_trace"]
    subprocess.run([*argv, "-k", "not postgresql", *POOL], cwd=ROOT, env=env, check=False)
    Path(f"{cache}.{os.getpid()}").replace(cache)
    traced = json.loads(cache.read_text())
    return traced


def select(mutant: Mutant, traced: dict[str, dict[str, Any]]) -> list[str]:
    """The tests that execute ``mutant``'s lines, else those that execute any line of its file,
    else the whole pool; never a test that fails without any mutant."""
    lines = set(range(mutant.line, mutant.end_line + 1))
    usable = {t: v for t, v in traced.items() if v.get("outcome") == "passed"}
    hit = [t for t, v in usable.items() if lines & set(v.get("lines", {}).get(mutant.path, ()))]
    if not hit:  # module-level code: its file's tests, and its mirror's (which may only read it)
        mirror = "tests/" + mutant.path.removeprefix("src/patwarden/")
        mirror = mirror.rsplit("/", 1)[0] + "/test_" + mirror.rsplit("/", 1)[1]
        hit = [
            t
            for t, v in usable.items()
            if v.get("lines", {}).get(mutant.path) or t.startswith(mirror + "::")
        ]
    chosen = hit or list(usable)
    return sorted(chosen, key=lambda t: usable[t].get("seconds", 0))  # -x: quick tests first


def run_tests(src: Path, tests: list[str], timeout: float) -> tuple[str, str]:
    """(verdict, the first failing test or "")."""
    env = dict(os.environ, PYTHONPATH=str(src), PYTHONDONTWRITEBYTECODE="1")
    argv = [sys.executable, "-m", "pytest", "-x", *PYTEST_ARGS, *tests]
    try:
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", ""
    if done.returncode == 0:
        return "survived", ""
    out = done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
    if "ERROR: not found" in out and any("::" in t for t in tests):
        # a test id named after a mutated value (a parametrized enum): run the tests' files
        return run_tests(src, sorted({t.split("::")[0] for t in tests}), timeout)
    if "ERROR: not found" in out or "file or directory not found" in out:
        return "error", "a selected test is gone (tests changed under the run)"
    failed = _FAILED.search(out)
    if failed:
        return "killed", failed.group(1)
    # no test ran: the mutant broke an import or the collection (pytest exit 2 or 4)
    last = [line for line in out.splitlines() if line.strip()][-1:] or [""]
    return "killed", f"pytest exit {done.returncode}: {last[0][:100]}"


def _sample(pool: list[Mutant], n: int, seed: int) -> list[Mutant]:
    def rank(m: Mutant) -> str:
        return hashlib.sha256(f"{seed}:{m.key}".encode()).hexdigest()

    return sorted(pool, key=rank)[:n] if n else pool


def _load(path: Path | None) -> dict[str, dict[str, Any]]:
    if path is None or not path.exists():
        return {}
    rows = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {row["id"]: row for row in rows}


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sample", type=int, default=0, help="run N mutants (0: all)")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--budget", type=float, default=0, help="stop after S seconds (0: none)")
    parser.add_argument("--timeout", type=float, default=300, help="at most, per mutant (s)")
    parser.add_argument("--results", type=Path, help="a JSON-lines file kept between runs")
    parser.add_argument("--retry-survivors", action="store_true")
    parser.add_argument("--shard", default="0/1", help="I/N: run every Nth mutant from the Ith")
    parser.add_argument("--list", action="store_true", help="list the mutants and ids, run none")
    parser.add_argument("--only", action="append", default=[], help="run the mutant with this id")
    parser.add_argument("--show", action="append", default=[], help="print this mutant's change")
    parser.add_argument("targets", nargs="*", default=list(TARGETS))
    return parser.parse_args()


def main() -> int:
    args = _parse()
    listed = equivalents()
    with tempfile.TemporaryDirectory(prefix="patwarden-mutants-") as tmp:
        src = Path(tmp) / "src"  # the mutants come from this copy: others may edit src/ meanwhile
        shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__"))
        texts = {path: (src.parent / path).read_text() for path in args.targets}
        every = [m for path in args.targets for m in mutants(path, texts[path])]
        behaviour = [m for m in every if not m.message_only]
        message_only = [m for m in every if m.message_only]
        print(
            f"mutants: {len(every)} ({len(behaviour)} behaviour, {len(message_only)} message-only)"
        )
        if args.list:
            for m in every:
                tag = (
                    "message-only " if m.message_only else "equivalent " if m.key in listed else ""
                )
                print(f"{tag}{m}  id={m.key}")
            return 0
        for m in every:
            if m.key in args.show:
                before, after = change(m, texts[m.path])
                print(f"{m}  id={m.key}\n  - {before}\n  + {after}")
        if args.show:
            return 0
        stale = set(listed) - {m.key for m in every}
        if stale and args.targets == list(TARGETS):
            print(f"{len(stale)} listed equivalent ids match no mutant now: {sorted(stale)}")
        sample = [m for m in behaviour if m.key in args.only] or _sample(
            behaviour, args.sample, args.seed
        )
        equivalent = [m for m in sample if m.key in listed]
        scored = [m for m in sample if m.key not in listed]
        done = _load(args.results)
        todo = [
            m
            for m in scored
            if m.key not in done
            or done[m.key]["verdict"] == "error"
            or args.only
            or (args.retry_survivors and done[m.key]["verdict"] == "survived")
        ]
        shard, shards = (int(n) for n in args.shard.split("/"))
        todo = todo[shard::shards]  # two shards in two processes share one --results file
        print(
            f"sample: {len(sample)} (seed {args.seed}): {len(equivalent)} listed equivalent, "
            f"{len(scored)} scored, {len(todo)} to run"
        )
        traced = trace(src, list(args.targets)) if todo else {}
        broken = [t for t, v in traced.items() if v.get("outcome") != "passed"]
        if broken:
            print(f"{len(broken)} tests fail without any mutant, never selected: {broken}")
        started = time.monotonic()
        for n, mutant in enumerate(todo, 1):
            if args.budget and time.monotonic() - started > args.budget:
                print(f"budget of {args.budget:.0f} s spent: {len(todo) - n + 1} left")
                break
            tests = select(mutant, traced)
            limit = min(args.timeout, 20 + 3 * sum(traced[t].get("seconds", 1) for t in tests))
            t0 = time.monotonic()
            try:
                (src.parent / mutant.path).write_text(mutated_source(mutant, texts[mutant.path]))
                verdict, by = run_tests(src, tests, limit)
            finally:
                (src.parent / mutant.path).write_text(texts[mutant.path])
            row = {
                "id": mutant.key,
                "mutant": str(mutant),
                "verdict": verdict,
                "by": by,
                "tests": len(tests),
                "seconds": round(time.monotonic() - t0, 1),
            }
            done[mutant.key] = row
            if args.results:
                with args.results.open("a") as out:
                    out.write(json.dumps(row) + "\n")
            print(
                f"[{n}/{len(todo)}] {verdict:8} {mutant} ({len(tests)} tests, "
                f"{row['seconds']} s) {by}",
                flush=True,
            )
    report(scored, equivalent, message_only, listed, done)
    return 0


def report(
    scored: list[Mutant],
    equivalent: list[Mutant],
    message_only: list[Mutant],
    listed: dict[str, str],
    done: dict[str, dict[str, Any]],
) -> None:
    errors = [m for m in scored if done.get(m.key, {}).get("verdict") == "error"]
    for mutant in errors:
        print(f"error (tests changed under the run? rerun it): {mutant}  id={mutant.key}")
    ran = [(m, done[m.key]) for m in scored if m.key in done and m not in errors]
    killed = sum(1 for _, row in ran if row["verdict"] != "survived")
    print("\nsurvivors:")
    for mutant, row in ran:
        if row["verdict"] == "survived":
            print(f"  {mutant}  id={mutant.key}")
    print(
        f"\nequivalent mutants in the sample (listed in {EQUIVALENT.name}, not run, not scored): "
        f"{len(equivalent)}"
    )
    for mutant in equivalent:
        print(f"  {mutant}: {listed[mutant.key]}")
    print(f"\nmessage-only mutants (not run, not scored): {len(message_only)}")
    for mutant in message_only:
        print(f"  {mutant}")
    per_file: dict[str, list[int]] = {}
    for mutant, row in ran:
        tally = per_file.setdefault(mutant.path, [0, 0])
        tally[0] += row["verdict"] != "survived"
        tally[1] += 1
    print("\nper file (killed/run):")
    for path, (k, r) in sorted(per_file.items()):
        print(f"  {path}: {k}/{r}")
    seconds = sum(row["seconds"] for _, row in ran)
    print(
        f"\nscored={len(scored)} run={len(ran)} killed={killed} survived={len(ran) - killed} "
        f"equivalent={len(equivalent)} message_only={len(message_only)} "
        f"left={len(scored) - len(ran)} mutant_seconds={seconds:.0f}"
    )
    print(f"mutation_score={round(100 * killed / len(ran)) if ran else 0}")


if __name__ == "__main__":
    raise SystemExit(main())
