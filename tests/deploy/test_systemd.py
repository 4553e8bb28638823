"""The systemd recipe (deploy/systemd/): ``systemd-analyze verify`` and ``security``, the config.

``systemd-analyze verify --root`` runs against a scratch root holding the distribution's own unit
files (for the targets the units order against), stand-ins for the executables the units name,
and the recipe's units; it must say nothing. ``systemd-analyze security --offline`` rates the
hardening of each service: both must stay "OK" (exposure at most 2.0 of 10).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.support import DEPLOY, check_config, cli_accepts

SYSTEMD = DEPLOY / "systemd"
UNITS = ("patwarden-serve.service", "patwarden-rotate.service", "patwarden-rotate.timer")
SERVICES = UNITS[:2]
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "CapabilityBoundingSet": "",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "SystemCallFilter": "@system-service",
    "MemoryDenyWriteExecute": "yes",
    "UMask": "0077",
    "StateDirectory": "patwarden",
}
MAX_EXPOSURE = 2.0


def _analyze() -> str:
    found = shutil.which("systemd-analyze")
    assert found, "systemd-analyze is missing: .ci/run installs Debian's systemd package"
    return found


def _settings(unit: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in (SYSTEMD / unit).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def _executables(unit: str) -> list[str]:
    settings = _settings(unit)
    commands = settings.get("ExecStart", []) + settings.get("ExecReload", [])
    return [command.split()[0] for command in commands]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch root: the distribution's units, stand-in executables, the recipe's units."""
    root = tmp_path_factory.mktemp("systemd-root")
    units = next(
        p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir()
    )
    shutil.copytree(units, root / "usr/lib/systemd/system", symlinks=True)
    (root / "usr/bin").mkdir(parents=True, exist_ok=True)
    (root / "bin").symlink_to("usr/bin")
    for unit in SERVICES:
        for executable in _executables(unit):
            stand_in = root / executable.lstrip("/")
            stand_in.parent.mkdir(parents=True, exist_ok=True)
            stand_in.write_text("#!/bin/true\n")
            stand_in.chmod(0o755)
    (root / "etc/systemd/system").mkdir(parents=True)
    for unit in UNITS:
        shutil.copy2(SYSTEMD / unit, root / "etc/systemd/system" / unit)
    return root


def test_systemd_analyze_verify_finds_nothing(root: Path) -> None:
    units = [f"/etc/systemd/system/{unit}" for unit in UNITS]
    done = subprocess.run(
        [_analyze(), "verify", "--man=no", f"--root={root}", *units],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout + done.stderr == ""  # unknown keys and bad values are only warnings


def test_the_checker_would_see_a_mistake(root: Path, tmp_path: Path) -> None:
    broken = root / "etc/systemd/system/patwarden-broken.service"
    broken.write_text(
        (SYSTEMD / "patwarden-serve.service")
        .read_text()
        .replace("ProtectSystem=strict", "ProtectSystm=strict")
    )
    try:
        done = subprocess.run(
            [
                _analyze(),
                "verify",
                "--man=no",
                f"--root={root}",
                "/etc/systemd/system/" + broken.name,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        broken.unlink()
    assert "Unknown key" in done.stderr


@pytest.mark.parametrize("unit", SERVICES)
def test_each_service_is_hardened(unit: str, root: Path) -> None:
    settings = _settings(unit)
    for key, value in HARDENING.items():
        assert value in settings.get(key, []), f"{unit}: {key}={value} missing"
    assert settings["User"] == ["patwarden"]
    done = subprocess.run(
        [_analyze(), "security", "--offline=yes", f"--root={root}", f"/etc/systemd/system/{unit}"],
        capture_output=True,
        text=True,
        check=False,
    )
    level = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", done.stdout)
    assert level, done.stdout + done.stderr
    assert float(level[1]) <= MAX_EXPOSURE, f"{unit}: exposure {level[1]} {level[2]}"


def test_the_timer_starts_the_rotate_service_hourly_and_catches_up() -> None:
    settings = _settings("patwarden-rotate.timer")
    assert settings["OnCalendar"] == ["hourly"]
    assert settings["Persistent"] == ["yes"]
    assert _settings("patwarden-rotate.service")["Type"] == ["oneshot"]


@pytest.mark.parametrize("unit", SERVICES)
def test_the_commands_the_units_run_are_patwarden_commands(unit: str) -> None:
    (command,) = _settings(unit)["ExecStart"]
    executable, *argv = command.split()
    assert executable == "/opt/patwarden/bin/patwarden"
    assert cli_accepts(argv) == f"patwarden {argv[0]}"


def test_the_recipe_config_passes_config_check(tmp_path: Path) -> None:
    output = check_config((SYSTEMD / "patwarden.yaml").read_text(), tmp_path)
    assert "writer (managed_identity)" in output
