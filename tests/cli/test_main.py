"""The CLI entry point: fast help, error handling, exit codes."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from patwarden.cli.main import cli

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
