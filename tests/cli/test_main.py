"""The CLI entry point: fast help, error handling, exit codes."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from patwarden.cli.main import _COMMANDS, cli
from patwarden.identity.cache_crypto import generate_cache_key

HEAVY_MODULES = ("azure", "msal", "httpx", "starlette", "uvicorn", "pydantic")


def test_help_lists_commands_and_imports_no_sdk() -> None:
    code = (
        "import sys\n"
        "from patwarden.cli.main import main\n"
        "sys.argv = ['patwarden', '--help']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY_MODULES!r})\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "emulator" in result.stdout
    assert "HEAVY=\n" in result.stdout, result.stdout


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert "patwarden" in result.output


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code == 2
    assert "No such command" in result.output


def test_a_closed_stdout_is_not_reported_as_a_bug() -> None:
    # `patwarden config schema | head -c 1`: the reader is gone before the document is written.
    process = subprocess.Popen(
        [sys.executable, "-m", "patwarden", "config", "schema"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.close()
    stderr = process.stderr.read()
    process.stderr.close()
    assert process.wait(timeout=60) == 141
    assert "unexpected" not in stderr
    assert "BrokenPipe" not in stderr


# --- start-up: what `--help`, `COMMAND --help` and `status` may import (docs/performance.md) -----

# Never imported to show help: the SDKs, the config model, the state store, the plugin registry
# (entry points), the command modules themselves and the run's composition root.
NOT_FOR_HELP = (
    "azure",
    "msal",
    "httpx",
    "rich",
    "pydantic",
    "yaml",
    "sqlite3",
    "importlib.metadata",
    "patwarden.app",
    "patwarden.config",
    "patwarden.sinks",
)
# `status` loads the config and reads the state store, but calls nothing and runs no engine.
NOT_FOR_STATUS = (
    "azure",
    "msal",
    "httpx",
    "rich",
    "pygments",
    "http.server",
    "patwarden.rotation.engine",
    "patwarden.domain.messages",
)

# `status` of an unchanged config reads its snapshot (patwarden.app.snapshot): no YAML, no
# pydantic, no config model, no sink registry.
NOT_FROM_SNAPSHOT = (
    "pydantic",
    "yaml",
    "importlib.metadata",
    "patwarden.config.schema",
    "patwarden.config.loader",
    "patwarden.sinks.registry",
)

IMPORTED = """\
import sys
from patwarden.cli.main import main
sys.argv = ["patwarden", *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    print("EXIT=%s" % exit.code, file=sys.stderr)
print("\\n".join(["MODULES", *sorted(sys.modules)]), file=sys.stderr)
"""


def imported(*args: str, env: dict[str, str] | None = None) -> tuple[str, set[str]]:
    """Run ``patwarden ARGS`` in a fresh interpreter: its stdout and the modules it imported."""
    result = subprocess.run(
        [sys.executable, "-c", IMPORTED, *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
    assert "EXIT=0" in result.stderr or "EXIT=None" in result.stderr, result.stderr
    return result.stdout, set(result.stderr.split("MODULES\n", 1)[1].split())


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


def test_help_lists_every_command_without_importing_one() -> None:
    stdout, modules = imported("--help")
    assert loaded(modules, NOT_FOR_HELP) == []
    command_modules = {target.split(":")[0] for target, _ in _COMMANDS.values()}
    assert sorted(command_modules & modules) == []
    listed = stdout.split("Commands:\n", 1)[1]
    assert [line.split()[0] for line in listed.splitlines() if line.strip()] == sorted(_COMMANDS)


@pytest.mark.parametrize("name", sorted(_COMMANDS))
def test_command_help_imports_only_its_command(name: str) -> None:
    stdout, modules = imported(name, "--help")
    assert f"Usage: patwarden {name}" in stdout
    assert loaded(modules, NOT_FOR_HELP) == []
    assert "logging" not in modules  # the root group configured nothing: the command never ran
    assert "pathlib" not in modules  # file options convert through LazyPath


def test_listed_short_helps_are_the_commands_own_first_help_lines() -> None:
    # The registry's static short help must not drift from the command's docstring: compare with
    # what click shows for the imported command itself.
    group = click.Group("patwarden")
    for name, (target, short_help) in _COMMANDS.items():
        module, attr = target.split(":")
        command = getattr(importlib.import_module(module), attr)
        first = inspect.cleandoc(command.help or "").split("\n\n")[0]
        assert short_help == first, f"{name}: update its short help in _COMMANDS"
        assert "\n" not in first, f"{name}: the first paragraph of its help is one line"
        group.add_command(command, name)
    ours = CliRunner().invoke(cli, ["--help"], terminal_width=120).output
    theirs = CliRunner().invoke(group, ["--help"], terminal_width=120).output
    assert ours.split("Commands:", 1)[1] == theirs.split("Commands:", 1)[1]


def test_status_loads_no_http_client_and_from_its_snapshot_no_config_model(tmp_path: Path) -> None:
    config = tmp_path / "patwarden.yaml"
    config.write_text(
        "azure: {tenant_id: 00000000-0000-0000-0000-0000000000aa}\n"
        "organization: contoso\n"
        f"state_dir: {tmp_path / 'state'}\n"
        "identities:\n"
        "  rotator: {kind: user, client_id: 00000000-0000-0000-0000-000000000001,\n"
        "            username: rotator@contoso.example, cache: {key: {env: STARTUP_TEST_KEY}}}\n"
        "rotator: rotator\n"
        "tokens: {}\n"
    )
    config.chmod(0o600)
    key = {"STARTUP_TEST_KEY": generate_cache_key().reveal()}
    stdout, modules = imported("status", "--config", str(config), "-o", "json", env=key)
    assert json.loads(stdout)["tokens"] == []
    assert loaded(modules, NOT_FOR_STATUS) == []
    assert "pydantic" in modules  # this first status loaded the config and kept its snapshot

    again, modules = imported("status", "--config", str(config), "-o", "json", env=key)
    assert again == stdout
    assert loaded(modules, (*NOT_FOR_STATUS, *NOT_FROM_SNAPSHOT)) == []


# --- the process main() owns: httpx's CLI deferred, the heap frozen at the end -----------------

HTTPX_IMPORT = """\
import sys
{prepare}
import httpx
print("LOADED=" + ",".join(m for m in ("rich", "pygments") if m in sys.modules))
sys.argv = ["httpx", "--help"]
for _ in range(2):  # a second call too, once the real CLI has replaced the deferred one
    try:
        httpx.main()
    except SystemExit as exit:
        print("HTTPX_EXIT=%s" % exit.code)
print("AFTER=" + ",".join(m for m in ("rich", "pygments") if m in sys.modules))
"""


@pytest.mark.parametrize("deferred", [False, True])
def test_httpx_cli_is_imported_only_when_called(deferred: bool) -> None:
    prepare = "from patwarden.cli.main import _defer_httpx_cli; _defer_httpx_cli()"
    code = HTTPX_IMPORT.format(prepare=prepare if deferred else "")
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    # httpx alone imports its CLI (rich, pygments): what main() saves every command that talks HTTP.
    assert ("LOADED=\n" if deferred else "LOADED=rich,pygments\n") in result.stdout
    assert result.stdout.count("HTTPX_EXIT=0") == 2  # httpx's own CLI still runs, its help printed
    assert "Usage: httpx" in result.stdout
    assert "AFTER=rich,pygments\n" in result.stdout


def test_main_leaves_the_heap_frozen_for_the_interpreter_exit() -> None:
    code = (
        "import gc, sys\n"
        "from patwarden.cli.main import main\n"
        "sys.argv = ['patwarden', '--version']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    print('FROZEN=%d' % gc.get_freeze_count())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    frozen = int(result.stdout.split("FROZEN=")[1])
    assert frozen > 10_000  # the whole heap: modules, click, the command's objects
