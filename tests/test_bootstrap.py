"""`make install` bootstraps uv from a hash-pinned requirements file (issue 11, item 10).

The attack: whoever controls the index (or the network path to it) serves another wheel under the
pinned version. pip with ``--require-hashes`` refuses it; here a substituted wheel is offered from
a local directory and must be refused.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / ".ci" / "uv-requirements.txt"


def _uv_version() -> str:
    match = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert match, "UV_VERSION is set in the Makefile"
    return match.group(1)


def test_the_makefile_installs_uv_only_with_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("$(UV): $(UV_REQUIREMENTS)\n", 1)[1].split("\n\n", 1)[0]
    assert "--require-hashes" in recipe
    assert "-r $(UV_REQUIREMENTS)" in recipe
    assert "UV_REQUIREMENTS := .ci/uv-requirements.txt" in makefile
    text = REQUIREMENTS.read_text()
    assert f"uv=={_uv_version()} " in text
    assert len(re.findall(r"--hash=sha256:[0-9a-f]{64}", text)) >= 2  # Linux x86_64 and aarch64


def _pip() -> list[str] | None:
    for python in (ROOT / ".tools" / "bin" / "python", Path(sys.executable)):
        if python.exists():
            probe = subprocess.run(
                [str(python), "-m", "pip", "--version"], capture_output=True, check=False
            )
            if probe.returncode == 0:
                return [str(python), "-m", "pip"]
    return None


def test_a_substituted_uv_wheel_is_refused(tmp_path: Path) -> None:
    pip = _pip()
    if pip is None:
        pytest.skip("no pip to run the bootstrap with (make install creates .tools/ with one)")
    wheels = tmp_path / "index"
    wheels.mkdir()
    fake = wheels / f"uv-{_uv_version()}-py3-none-any.whl"
    with zipfile.ZipFile(fake, "w") as archive:
        archive.writestr("uv/__init__.py", "raise SystemExit('not uv')\n")
        info = f"uv-{_uv_version()}.dist-info"
        archive.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: uv\nVersion: {_uv_version()}\n"
        )
        archive.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        archive.writestr(f"{info}/RECORD", "")
    target = tmp_path / "target"
    refused = subprocess.run(
        [
            *pip,
            "install",
            "--no-index",
            "--find-links",
            str(wheels),
            "--require-hashes",
            "--only-binary=:all:",
            "--target",
            str(target),
            "-r",
            str(REQUIREMENTS),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert refused.returncode != 0
    assert "DO NOT MATCH THE HASHES" in refused.stderr
    assert not (target / "uv").exists()
    shutil.rmtree(target, ignore_errors=True)
