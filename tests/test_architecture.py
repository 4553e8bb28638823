"""Dependencies point inward: the domain core does no I/O and imports no adapter."""

from __future__ import annotations

import ast
from pathlib import Path

import patwarden

SRC = Path(patwarden.__file__).parent
FORBIDDEN_IN_DOMAIN = (
    "azure",
    "msal",
    "httpx",
    "starlette",
    "uvicorn",
    "sqlite3",
    "socket",
    "subprocess",
    "requests",
    "patwarden.azdo",
    "patwarden.cli",
    "patwarden_emulator",
    "patwarden.identity",
    "patwarden.sinks",
    "patwarden.state",
    "patwarden.rotation.engine",
)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_domain_imports_no_adapter_or_io_library() -> None:
    offenders = {}
    for path in sorted((SRC / "domain").glob("**/*.py")):
        bad = {
            name
            for name in _imports(path)
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN_IN_DOMAIN)
        }
        if bad:
            offenders[str(path.relative_to(SRC))] = sorted(bad)
    assert offenders == {}


def test_domain_never_reads_the_wall_clock() -> None:
    for path in sorted((SRC / "domain").glob("**/*.py")):
        text = path.read_text()
        for call in ("datetime.now(", "time.time(", "datetime.utcnow(", "date.today("):
            assert call not in text, f"{path.name} calls {call}: inject a clock instead"


def test_cli_modules_import_no_sdk_at_module_level() -> None:
    heavy = ("azure", "msal", "httpx", "starlette", "uvicorn", "pydantic", "rich")
    for path in sorted((SRC / "cli").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only; imports inside functions are the point
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in heavy, f"{path.name} imports {name} at load time"
