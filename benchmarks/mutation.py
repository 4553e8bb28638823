"""Mutation testing of the rotation core: plant small bugs, count how many the tests catch.

A small AST mutator of our own (mutmut 3 mutates ``src/`` in place and trampolines every
function; this one never touches the working tree): each mutant is written into a private copy
of ``src/`` that is put first on ``PYTHONPATH`` (subprocesses the tests start inherit it), and the
test subset runs with ``-x``. A failing run kills the mutant; a timeout counts as killed too.

Targets (default): ``src/patwarden/domain/``, the engine (``src/patwarden/rotation/`` engine,
actions, reconcile, converge, tail, records) and the SQLite state store. Operators:
``and``↔``or``, comparison flips (``==``↔``!=``, ``<``↔``>=``, ``in``↔``not in``, ``is``↔
``is not``), ``not x``→``x``, ``True``↔``False``, ``n``→``n+1``, unary ``-``→``+``, ``+``↔``-``,
``continue``↔``break``, ``return x``→``return None`` and string constants. A string that is only
text for people (inside an f-string, an exception's or a log call's argument, a ``reason=``/
``detail=`` keyword, or any string of three words or more) is a *message-only* mutant: listed
separately and left out of the score.

    .venv/bin/python benchmarks/mutation.py [--sample 120] [--seed 17] [--budget 1800] [--list]

The last line printed is ``mutation_score=N`` (killed / run, in percent, message-only excluded).
"""

from __future__ import annotations

import argparse
import ast
import copy
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = (
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "src/patwarden/domain").glob("*.py")),
    *(
        f"src/patwarden/rotation/{name}.py"
        for name in ("engine", "actions", "reconcile", "converge", "tail", "records")
    ),
    "src/patwarden/state/sqlite.py",
)
TESTS = (
    "tests/domain",
    "tests/rotation",
    "tests/state/test_sqlite.py",
    "tests/state/test_contract.py",
)
PYTEST_ARGS = ("-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", "-k", "not postgresql")
_FLIP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.GtE,
    ast.GtE: ast.Lt,
    ast.Gt: ast.LtE,
    ast.LtE: ast.Gt,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
_MESSAGE_KEYWORDS = {"reason", "detail", "message", "help", "hint", "note"}


@dataclass(frozen=True)
class Mutant:
    path: str
    index: int  # position of the node in ast.walk order
    line: int
    what: str
    message_only: bool

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def _skipped_nodes(tree: ast.AST) -> set[int]:
    """Ids of nodes never mutated: docstrings, annotations, ``__all__``, type-only code."""
    skip: set[int] = set()

    def skip_all(node: ast.AST | None) -> None:
        if node is not None:
            skip.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                skip_all(body[0])
        if isinstance(node, ast.AnnAssign):
            skip_all(node.annotation)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            skip_all(node.returns)
            for arg in (*node.args.args, *node.args.kwonlyargs, *node.args.posonlyargs):
                skip_all(arg.annotation)
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            skip_all(node)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip_all(node)
        if isinstance(node, ast.Call) and ast.unparse(node.func) in {"TypeVar", "cast"}:
            skip_all(node)
    return skip


def _message_nodes(tree: ast.AST) -> set[int]:
    """Ids of string constants that are only text for people."""
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            ids.update(id(n) for n in ast.walk(node))
        elif isinstance(node, ast.Raise) and node.exc is not None:
            ids.update(id(n) for n in ast.walk(node.exc) if isinstance(n, ast.Constant))
        elif isinstance(node, ast.Call):
            func = ast.unparse(node.func)
            if func.startswith(("_log.", "log.", "logger.", "logging.")) or func.endswith(
                ("Error", "Exception", "notes.append", "problems.append")
            ):
                for arg in node.args:
                    ids.update(id(n) for n in ast.walk(arg))
            for kw in node.keywords:
                if kw.arg in _MESSAGE_KEYWORDS:
                    ids.update(id(n) for n in ast.walk(kw.value))
    return ids


def _is_prose(value: object) -> bool:
    """A string of three words or more is text for people (keys and names have no spaces)."""
    return isinstance(value, str) and value.count(" ") >= 2


def _describe(node: ast.AST) -> list[str]:
    """The mutations of one node, as descriptions (empty: not mutated)."""
    if isinstance(node, ast.BoolOp):
        return ["and -> or" if isinstance(node.op, ast.And) else "or -> and"]
    if isinstance(node, ast.Compare):
        return [
            f"{type(op).__name__} -> {_FLIP[type(op)].__name__}"
            for op in node.ops
            if type(op) in _FLIP
        ][:1]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return ["drop not"]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return ["unary - -> +"]
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        return ["+ -> -" if isinstance(node.op, ast.Add) else "- -> +"]
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool):
            return [f"{node.value} -> {not node.value}"]
        if isinstance(node.value, int):
            return [f"{node.value} -> {node.value + 1}"]
        if isinstance(node.value, str) and node.value:
            return [f"string {node.value[:30]!r} -> 'XX'+..."]
    if isinstance(node, ast.Continue):
        return ["continue -> break"]
    if isinstance(node, ast.Break):
        return ["break -> continue"]
    if (
        isinstance(node, ast.Return)
        and node.value is not None
        and not (isinstance(node.value, ast.Constant) and node.value.value is None)
    ):
        return ["return x -> return None"]
    return []


def _apply(node: ast.AST) -> ast.AST:
    """Return ``node`` mutated (``node`` is a deep copy the caller owns)."""
    if isinstance(node, ast.BoolOp):
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in _FLIP:
                node.ops[i] = _FLIP[type(op)]()
                break
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return node.operand
    elif isinstance(node, ast.UnaryOp):
        node.op = ast.UAdd()
    elif isinstance(node, ast.BinOp):
        node.op = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
    elif isinstance(node, ast.Constant):
        if isinstance(node.value, bool):
            node.value = not node.value
        elif isinstance(node.value, int):
            node.value += 1
        else:
            node.value = "XX" + str(node.value)
    elif isinstance(node, ast.Continue):
        return ast.Break()
    elif isinstance(node, ast.Break):
        return ast.Continue()
    elif isinstance(node, ast.Return):
        node.value = ast.Constant(value=None)
    return node


def mutants(path: str) -> Iterator[Mutant]:
    tree = ast.parse((ROOT / path).read_text())
    skip, messages = _skipped_nodes(tree), _message_nodes(tree)
    for index, node in enumerate(ast.walk(tree)):
        if id(node) in skip:
            continue
        for what in _describe(node):
            message_only = isinstance(node, ast.Constant) and (
                id(node) in messages or _is_prose(node.value)
            )
            line = getattr(node, "lineno", 0)
            yield Mutant(path, index, line, what, message_only)


class _Swap(ast.NodeTransformer):
    def __init__(self, target: int) -> None:
        self.target = target

    def visit(self, node: ast.AST) -> ast.AST:
        if id(node) == self.target:
            return _apply(node)
        visited: ast.AST = super().visit(node)
        return visited


def mutated_source(mutant: Mutant) -> str:
    tree = ast.parse((ROOT / mutant.path).read_text())
    tree = copy.deepcopy(tree)
    node = list(ast.walk(tree))[mutant.index]
    new = _Swap(id(node)).visit(tree)
    return ast.unparse(ast.fix_missing_locations(new))


def run_tests(src: Path, timeout: float) -> str:
    env = dict(os.environ, PYTHONPATH=str(src), PYTHONDONTWRITEBYTECODE="1")
    argv = [sys.executable, "-m", "pytest", *PYTEST_ARGS, *TESTS]
    try:
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout"
    return "survived" if done.returncode == 0 else "killed"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sample", type=int, default=0, help="run N mutants at random (0: all)")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--budget", type=float, default=0, help="stop after S seconds (0: none)")
    parser.add_argument("--timeout", type=float, default=300, help="per mutant, in seconds")
    parser.add_argument("--list", action="store_true", help="count and list mutants, run none")
    parser.add_argument(
        "--only", action="append", default=[], help="run the mutant printed as PATH:LINE: WHAT"
    )
    parser.add_argument("targets", nargs="*", default=list(TARGETS))
    args = parser.parse_args()

    every = [m for path in args.targets for m in mutants(path)]
    behaviour = [m for m in every if not m.message_only]
    message_only = [m for m in every if m.message_only]
    print(f"mutants: {len(every)} ({len(behaviour)} behaviour, {len(message_only)} message-only)")
    if args.list:
        for m in every:
            print(("message-only " if m.message_only else "") + str(m))
        return 0
    chosen = behaviour
    if args.only:
        chosen = [m for m in behaviour if str(m) in args.only]
    if args.sample and args.sample < len(behaviour):
        chosen = random.Random(args.seed).sample(behaviour, args.sample)  # random order: a
        # budget cut leaves a fair sample
    with tempfile.TemporaryDirectory(prefix="patwarden-mutants-") as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__"))
        if run_tests(src, args.timeout) != "survived":
            print("the tests fail without any mutant: fix them first", file=sys.stderr)
            return 2
        started, results = time.monotonic(), []
        for n, mutant in enumerate(chosen, 1):
            if args.budget and time.monotonic() - started > args.budget:
                print(f"budget of {args.budget:.0f} s spent: {n - 1} of {len(chosen)} run")
                break
            original = (src.parent / mutant.path).read_text()
            try:
                (src.parent / mutant.path).write_text(mutated_source(mutant))
                verdict = run_tests(src, args.timeout)
            finally:
                (src.parent / mutant.path).write_text(original)
            results.append((mutant, verdict))
            print(f"[{n}/{len(chosen)}] {verdict:8} {mutant}", flush=True)
    killed = sum(1 for _, v in results if v != "survived")
    print("\nsurvivors:")
    for mutant, verdict in results:
        if verdict == "survived":
            print(f"  {mutant}")
    print(f"\nmessage-only mutants (not run, not scored): {len(message_only)}")
    for mutant in message_only:
        print(f"  {mutant}")
    per_file: dict[str, list[int]] = {}
    for mutant, verdict in results:
        tally = per_file.setdefault(mutant.path, [0, 0])
        tally[0] += verdict != "survived"
        tally[1] += 1
    print("\nper file (killed/run):")
    for path, (k, r) in sorted(per_file.items()):
        print(f"  {path}: {k}/{r}")
    print(f"\nrun={len(results)} killed={killed} survived={len(results) - killed}")
    print(f"mutation_score={round(100 * killed / len(results)) if results else 0}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
