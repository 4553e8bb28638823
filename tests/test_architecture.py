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


# Wall-clock reads allowed outside patwarden/clock.py, per file, each with its reason. Business
# time ("now" for schedules, ages, stamps, deadlines) always comes from an injected Clock.
WALL_CLOCK_ALLOWED = {
    # The one place that reads it: SystemClock.
    "clock.py": 1,
    # MSAL and azure-core compute token and device-code expiries with time.time(); the arithmetic
    # against them must use the same clock (a pinned run clock would make tokens look expired).
    "identity/user.py": 3,
    "identity/signin.py": 1,  # the device-code deadline MSAL polls against
    "identity/legacy.py": 1,
    # When a cached Key Vault token (azure-core) is due a refresh; an HTTP-date Retry-After.
    "sinks/key_vault_client.py": 1,
    # The age of a leftover temp file: st_mtime is the file system's wall clock.
    "sinks/safe_files.py": 1,
}
_WALL_CLOCK_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("time", "time"),
    ("date", "today"),
}


def _wall_clock_reads(path: Path) -> int:
    """Calls such as ``datetime.now(…)``, ``time.time()``, ``date.today()`` (comments ignored;
    ``time.monotonic`` and passing ``time.time`` uncalled, as the rate limiter does, are fine)."""
    count = 0
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = node.func.value
        if isinstance(owner, ast.Name) and (owner.id, node.func.attr) in _WALL_CLOCK_CALLS:
            count += 1
    return count


def test_only_the_clock_module_reads_the_wall_clock() -> None:
    found = {}
    for path in sorted(SRC.glob("**/*.py")):
        name = str(path.relative_to(SRC))
        reads = _wall_clock_reads(path)
        if reads != WALL_CLOCK_ALLOWED.get(name, 0):
            found[name] = reads
    assert found == {}, "read the time from the AppContext's Clock (patwarden.clock) instead"
