"""Packaging: the sdist and wheel build and pass ``twine check``; pipx installs the wheel.

The version lives in one place (``src/patwarden/__init__.py``); the wheel's metadata and
``patwarden --version`` show it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

import patwarden
from tests.deploy.support import IMAGE_EXTRAS, REPO, Dist, run, tool

pytestmark = pytest.mark.slow


def test_the_sdist_and_the_wheel_pass_twine_check(dist: Dist) -> None:
    output = run([tool("twine"), "check", "--strict", str(dist.wheel), str(dist.sdist)])
    assert output.count("PASSED") == 2, output


def test_the_version_comes_from_one_place_and_patwarden_version_shows_it(dist: Dist) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"], "the version belongs in src/patwarden/__init__.py"
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["hatch"]["version"]["path"] == "src/patwarden/__init__.py"

    with zipfile.ZipFile(dist.wheel) as wheel:
        metadata = wheel.read(f"patwarden-{patwarden.__version__}.dist-info/METADATA").decode()
    assert f"\nVersion: {patwarden.__version__}\n" in metadata
    assert dist.wheel.name == f"patwarden-{patwarden.__version__}-py3-none-any.whl"

    shown = subprocess.run(
        [sys.executable, "-m", "patwarden", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == f"patwarden, version {patwarden.__version__}"


def test_the_wheel_holds_the_product_its_entry_points_and_no_tests(dist: Dist) -> None:
    with zipfile.ZipFile(dist.wheel) as wheel:
        names = wheel.namelist()
        info = f"patwarden-{patwarden.__version__}.dist-info"
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
        metadata = wheel.read(f"{info}/METADATA").decode()
    assert "patwarden/py.typed" in names
    assert "patwarden/cli/main.py" in names
    assert not [n for n in names if n.startswith("tests/")]
    assert "patwarden = patwarden.cli.main:main" in entry_points
    assert "key_vault = patwarden.sinks.key_vault:KeyVaultSink" in entry_points
    for extra in IMAGE_EXTRAS:
        assert f"Provides-Extra: {extra}" in metadata


def test_the_sdist_holds_the_sources_and_docs_but_no_caches_or_node_modules(dist: Dist) -> None:
    with tarfile.open(dist.sdist) as sdist:
        names = sdist.getnames()
    top = f"patwarden-{patwarden.__version__}"
    assert f"{top}/src/patwarden/__init__.py" in names
    assert f"{top}/docs/deploy.md" in names
    assert f"{top}/deploy/container/Dockerfile" in names
    unwanted = ("node_modules", ".hypothesis", "__pycache__", ".venv")
    assert not [n for n in names if any(part in n.split("/") for part in unwanted)]


def test_pipx_installs_the_wheel_with_the_state_backend_extras(dist: Dist, tmp_path: Path) -> None:
    home, bin_dir = tmp_path / "pipx", tmp_path / "bin"
    env = {
        **os.environ,
        "PIPX_HOME": str(home),
        "PIPX_BIN_DIR": str(bin_dir),
        "PIPX_MAN_DIR": str(tmp_path / "man"),
    }
    spec = f"{dist.wheel}[{','.join(IMAGE_EXTRAS)}]"
    # --no-compile: pip's bytecode compilation is most of the time and proves nothing here.
    run(
        [tool("pipx"), "install", "--pip-args=--no-compile", "--python", sys.executable, spec],
        env=env,
    )

    shown = run([str(bin_dir / "patwarden"), "--version"], env=env)
    assert shown.strip() == f"patwarden, version {patwarden.__version__}"
    python = home / "venvs" / "patwarden" / "bin" / "python"
    imported = run([str(python), "-c", "import psycopg, psycopg_pool, azure.storage.blob"], env=env)
    assert imported == ""
    # pipx's venv is its own: patwarden there is the wheel, not this checkout.
    where = run([str(python), "-c", "import patwarden; print(patwarden.__file__)"], env=env)
    assert str(home) in where
    assert str(REPO / "src") not in where
