"""A layer contract checker over the static imports of a source tree (what import-linter does,
small enough to read): module-level import graph, forbidden imports, import cycles.

Imports inside ``if TYPE_CHECKING:`` are ignored (they never run). Imports inside functions count
like any other: a lazy import (the CLI imports its SDKs that way, to start fast) is still a
dependency, and two modules that import each other, lazily or not, are one module in two files.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Import:
    """One static import: *importer* imports *imported* (a module of the tree, or external)."""

    importer: str
    imported: str
    line: int
    top_level: bool


def module_names(src: Path) -> dict[str, Path]:
    """Every module under *src* (a ``src/`` folder holding packages) by dotted name."""
    found = {}
    for path in sorted(src.rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports_of(name: str, path: Path, modules: Mapping[str, Path]) -> list[Import]:
    """The static imports of module *name*; ``from pkg import mod`` names the submodule."""
    found: list[Import] = []

    def add(target: str, node: ast.stmt, top: bool) -> None:
        found.append(Import(name, target, node.lineno, top))

    def visit(body: Iterable[ast.stmt], top: bool) -> None:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse, top)
                continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    add(alias.name, node, top)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    add(sub if sub in modules else node.module, node, top)
            # A function body runs later; a class body or an if/try block runs at import time.
            inner_top = top and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            for field in ("body", "orelse", "handlers", "finalbody"):
                child = getattr(node, field, None)
                if isinstance(child, list) and child and isinstance(child[0], ast.stmt):
                    visit(child, inner_top)
                elif field == "handlers" and child:
                    for handler in child:
                        visit(handler.body, inner_top)

    visit(ast.parse(path.read_text(), filename=str(path)).body, True)
    return found


def all_imports(src: Path) -> list[Import]:
    modules = module_names(src)
    return [imp for name, path in modules.items() for imp in imports_of(name, path, modules)]


def _within(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def forbidden(
    imports: Iterable[Import], *, source: Iterable[str], forbidden: Iterable[str]
) -> list[str]:
    """Imports by modules in *source* of modules in *forbidden* (``importer:line -> imported``)."""
    source, forbidden = tuple(source), tuple(forbidden)
    return [
        f"{imp.importer}:{imp.line} -> {imp.imported}"
        for imp in imports
        if _within(imp.importer, source) and _within(imp.imported, forbidden)
    ]


def cycles(imports: Iterable[Import], modules: Iterable[str]) -> list[list[str]]:
    """Strongly connected groups of modules that import each other (directly or round about)."""
    known = set(modules)
    graph: dict[str, set[str]] = {name: set() for name in known}
    for imp in imports:
        if imp.imported in known and imp.imported != imp.importer:
            graph[imp.importer].add(imp.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def connect(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found
