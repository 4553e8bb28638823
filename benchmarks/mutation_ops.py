"""The mutator of ``benchmarks/mutation.py``: which small bugs are planted, where, and their ids.

Operators: ``and``↔``or``, comparison flips (``==``↔``!=``, ``<``↔``>=``, ``in``↔``not in``,
``is``↔``is not``), ``not x``→``x``, ``True``↔``False``, ``n``→``n+1``, unary ``-``→``+``,
``+``↔``-``, ``continue``↔``break``, ``return x``→``return None`` and string constants.

Never mutated: docstrings, annotations, ``__all__``, ``TYPE_CHECKING`` blocks, ``TypeVar``/``cast``
arguments, and the flags of ``@dataclass(...)`` (``frozen``, ``kw_only``, ``slots``): like
annotations they are declarations mypy strict checks at every use (an assignment to a frozen
field, a positional argument to a keyword-only one), not behaviour a test can observe.

A mutant that only changes text for people is *message-only*: listed separately, never run,
never scored. That is any mutant inside an exception, the arguments of a log call or of
``notes``/``problems.append``, a ``reason=``/``detail=``/``hint=``/``field=``… keyword, the value
given to a variable named ``reason``, ``detail``, ``message``, ``note``…, or an f-string of three
words or more, and any string of three words or more; never the key of a ``(key, value)`` pair
(an audit record's details are data) nor a short f-string (a marker, a scope: data).

Each mutant has a stable id, ``PATH:OWNER:WHAT:HASH`` (OWNER: the function or class it is in, a
method's class; HASH: of the mutated node's text and of its lines' text, not their numbers), which
survives edits elsewhere in the file; the equivalent-mutant list and ``--results`` use it.
"""

from __future__ import annotations

import ast
import copy
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

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
_MESSAGE_KEYWORDS = {"reason", "detail", "message", "help", "hint", "note", "field", "docs"}
_MESSAGE_NAMES = {"reason", "detail", "message", "note", "hint", "problem", "why", "text", "docs"}
_DECLARATION_FLAGS = {"frozen", "kw_only", "slots"}


@dataclass(frozen=True)
class Mutant:
    path: str  # relative to the repository root, e.g. src/patwarden/rotation/engine.py
    index: int  # position of the node in ast.walk order (of the file as parsed)
    line: int
    end_line: int
    what: str
    message_only: bool
    key: str  # the stable id

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def _skipped_nodes(tree: ast.AST) -> set[int]:
    """Ids of nodes never mutated (see the module docstring)."""
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
        if isinstance(node, ast.ClassDef):
            for deco in node.decorator_list:
                if isinstance(deco, ast.Call) and ast.unparse(deco.func).endswith("dataclass"):
                    for kw in deco.keywords:
                        if kw.arg in _DECLARATION_FLAGS:
                            skip_all(kw.value)
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
    """Ids of the nodes that only make text for people: everything inside an exception, a log
    call's or ``notes``/``problems.append``'s arguments, a message keyword, a value given to a
    message variable, or an f-string of three words or more; never the key of a ``(key, value)``
    pair (an audit record's details are data)."""
    keys = {
        id(node.elts[0])
        for node in ast.walk(tree)
        if isinstance(node, ast.Tuple)
        and len(node.elts) == 2
        and isinstance(node.elts[0], ast.Constant)
        and isinstance(node.elts[0].value, str)
    }
    regions: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(
                v.value
                for v in node.values
                if isinstance(v, ast.Constant) and isinstance(v.value, str)
            )
            if _is_prose(text):
                regions.append(node)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and any(
            isinstance(t, ast.Name) and t.id.strip("_").lower() in _MESSAGE_NAMES
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        ):
            if node.value is not None:
                regions.append(node.value)
        elif isinstance(node, ast.Raise) and node.exc is not None:
            regions.append(node.exc)
        elif isinstance(node, ast.Call):
            func = ast.unparse(node.func)
            if func.startswith(("_log.", "log.", "logger.", "logging.")) or func.endswith(
                ("Error", "Exception", "notes.append", "problems.append")
            ):
                regions.extend(node.args)
            regions.extend(kw.value for kw in node.keywords if kw.arg in _MESSAGE_KEYWORDS)
    inside = {n for region in regions for n in ast.walk(region)}
    # ``+``↔``-`` on text raises TypeError: behaviour, even inside a message
    return {id(n) for n in inside if not isinstance(n, ast.BinOp)} - keys


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


def _owners(tree: ast.AST) -> dict[int, str]:
    """The qualified name of the function or class each node is in (``<module>`` outside)."""
    owner: dict[int, str] = {}

    def visit(node: ast.AST, name: str) -> None:
        owner[id(node)] = name
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                inner = child.name if name == "<module>" else f"{name}.{child.name}"
                owner[id(child)] = name
                for grandchild in ast.iter_child_nodes(child):
                    visit(grandchild, inner)
            else:
                visit(child, name)

    visit(tree, "<module>")
    return owner


def mutants(path: str, source: str) -> Iterator[Mutant]:
    """Every mutant of the file ``path`` (relative to the repository root) whose text is
    ``source``."""
    tree = ast.parse(source)
    skip, messages, owners = _skipped_nodes(tree), _message_nodes(tree), _owners(tree)
    seen: dict[str, int] = {}
    lines = source.splitlines()
    for index, node in enumerate(ast.walk(tree)):
        if id(node) in skip:
            continue
        for what in _describe(node):
            message_only = id(node) in messages or (
                isinstance(node, ast.Constant) and _is_prose(node.value)
            )
            line = getattr(node, "lineno", 0)
            end = getattr(node, "end_lineno", None) or line
            # the node's text and its lines' text: not where they are (edits elsewhere move that)
            context = " ".join(text.strip() for text in lines[line - 1 : end])
            digest = hashlib.sha1(f"{ast.unparse(node)}\n{context}".encode(), usedforsecurity=False)
            op = "string" if what.startswith("string") else what.replace(" ", "")
            key = f"{path}:{owners.get(id(node), '<module>')}:{op}:{digest.hexdigest()[:8]}"
            seen[key] = seen.get(key, 0) + 1
            if seen[key] > 1:  # the same lines twice in one function: number them in walk order
                key = f"{key}#{seen[key]}"
            yield Mutant(path, index, line, end, what, message_only, key)


class _Swap(ast.NodeTransformer):
    def __init__(self, target: int) -> None:
        self.target = target

    def visit(self, node: ast.AST) -> ast.AST:
        if id(node) == self.target:
            return _apply(node)
        visited: ast.AST = super().visit(node)
        return visited


def mutated_source(mutant: Mutant, source: str) -> str:
    """``source`` (the text ``mutant`` was found in) with ``mutant`` applied."""
    tree = copy.deepcopy(ast.parse(source))
    node = list(ast.walk(tree))[mutant.index]
    new = _Swap(id(node)).visit(tree)
    return ast.unparse(ast.fix_missing_locations(new))


def change(mutant: Mutant, source: str) -> tuple[str, str]:
    """The mutated node's source text before and after ``mutant``."""
    node = list(ast.walk(ast.parse(source)))[mutant.index]
    before = ast.get_source_segment(source, node) or ast.unparse(node)
    return before, ast.unparse(_apply(copy.deepcopy(node)))
