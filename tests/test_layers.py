"""The layer contract: which package of ours may import which (docs/architecture.md, "Layers").

Checked over the static imports of ``src/`` by :mod:`tests.support.layers`; the last tests prove
the checker fails on a forbidden import and on a cycle, so a passing contract means something.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.layers import all_imports, cycles, forbidden, module_names

SRC = Path(__file__).resolve().parents[1] / "src"

# What every adapter and the engine may never import: the CLI and the composition root.
ADAPTERS = (
    "patwarden.azdo",
    "patwarden.config",
    "patwarden.doctor",
    "patwarden.domain",
    "patwarden.hooks",
    "patwarden.identity",
    "patwarden.inventory",
    "patwarden.plugins",
    "patwarden.rotation",
    "patwarden.sinks",
    "patwarden.state",
)
I_O_LIBRARIES = (
    "azure",
    "httpx",
    "msal",
    "psycopg",
    "requests",
    "socket",
    "sqlite3",
    "starlette",
    "subprocess",
    "uvicorn",
)

# (rule, modules it binds, what they must not import)
CONTRACT = [
    (
        "the domain imports nothing of ours but errors and secret, and no I/O library",
        ("patwarden.domain",),
        (
            *(p for p in ADAPTERS if p != "patwarden.domain"),
            "patwarden.app",
            "patwarden.cli",
            "patwarden.clock",
            "patwarden.tls",
            "patwarden_emulator",
            *I_O_LIBRARIES,
        ),
    ),
    (
        "adapters never import the CLI or the composition root",
        ADAPTERS,
        ("patwarden.cli", "patwarden.app", "patwarden.service"),
    ),
    (
        "the composition root never imports the CLI or the service",
        ("patwarden.app",),
        ("patwarden.cli", "patwarden.service"),
    ),
    (
        "the service (patwarden serve) sits under the CLI: it never imports it",
        ("patwarden.service",),
        ("patwarden.cli",),
    ),
    ("the product never imports the emulator", ("patwarden",), ("patwarden_emulator",)),
    (
        "the rotation engine works through its ports, never through an adapter",
        ("patwarden.rotation",),
        (
            "patwarden.hooks",
            "patwarden.identity",
            "patwarden.inventory",
            "patwarden.doctor",
            "patwarden.sinks",
            "patwarden.state",
        ),
    ),
    (
        "the configuration knows no adapter (sink kinds are asked of the registry)",
        ("patwarden.config",),
        ("patwarden.identity", "patwarden.rotation", "patwarden.state", "patwarden.hooks"),
    ),
]


@pytest.mark.parametrize(("rule", "source", "banned"), CONTRACT, ids=[c[0] for c in CONTRACT])
def test_layer_contract(rule: str, source: tuple[str, ...], banned: tuple[str, ...]) -> None:
    assert forbidden(all_imports(SRC), source=source, forbidden=banned) == [], rule


def test_no_import_cycles() -> None:
    assert cycles(all_imports(SRC), module_names(SRC)) == []


CROSS_CUTTING = {
    "__init__.py",
    "__main__.py",
    "clock.py",
    "errors.py",
    "files.py",
    "http_answers.py",  # bounded answer reads: the Azure DevOps transport and the Key Vault client
    "lazy.py",  # names imported on first use: patwarden.azdo and patwarden.sinks
    "secret.py",
    "tls.py",
}


def test_src_holds_only_packages_and_a_few_cross_cutting_modules() -> None:
    top = {path.name for path in (SRC / "patwarden").glob("*.py")}
    assert top <= CROSS_CUTTING, sorted(top - CROSS_CUTTING)


def test_no_module_is_over_400_lines() -> None:
    long = {
        str(path.relative_to(SRC)): n
        for path in SRC.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 400
    }
    assert long == {}


# --- the checker can fail ----------------------------------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_the_checker_reports_a_forbidden_import_even_inside_a_function(tmp_path: Path) -> None:
    src = _tree(
        tmp_path,
        {
            "patwarden/__init__.py": "",
            "patwarden/domain/__init__.py": "",
            "patwarden/domain/models.py": "def f():\n    import httpx\n",
            "patwarden/sinks/__init__.py": "",
            "patwarden/sinks/file.py": "from patwarden.cli import main\n",
            "patwarden/cli/__init__.py": "",
            "patwarden/cli/main.py": "",
        },
    )
    imports = all_imports(src)
    assert forbidden(imports, source=["patwarden.domain"], forbidden=["httpx"]) == [
        "patwarden.domain.models:2 -> httpx"
    ]
    assert forbidden(imports, source=ADAPTERS, forbidden=["patwarden.cli"]) == [
        "patwarden.sinks.file:1 -> patwarden.cli.main"
    ]


def test_the_checker_reports_cycles_also_through_lazy_imports_but_not_type_only_ones(
    tmp_path: Path,
) -> None:
    src = _tree(
        tmp_path,
        {
            "p/__init__.py": "",
            "p/a.py": "from p import b\n",
            "p/b.py": "import p.c\n",
            "p/c.py": "from p.a import x\n",
            "p/d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from p import e\n",
            "p/e.py": "def f():\n    from p import f\n",
            "p/f.py": "def g():\n    import p.e\n",
        },
    )
    assert cycles(all_imports(src), module_names(src)) == [["p.a", "p.b", "p.c"], ["p.e", "p.f"]]
