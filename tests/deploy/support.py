"""What the deployment checks share: where the recipes are, the built distribution, tool paths.

The wheel is built once per test session, even with several xdist workers: the first worker to
get the lock builds it into a folder all workers share (pytest's base temp folder's parent).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import click
from filelock import FileLock

from patwarden.cli.main import cli as patwarden_cli
from tests.cli.support import cli

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
VENV_BIN = Path(sys.executable).parent
TOOLS_BIN = REPO / ".tools" / "bin"
# The extras the container image and the recipes install (the state backends).
IMAGE_EXTRAS = ("postgresql", "azblob")


@dataclass(frozen=True)
class Dist:
    """The built sdist and wheel, and the image's hash-pinned requirements."""

    folder: Path

    @property
    def wheel(self) -> Path:
        return _one(self.folder.glob("patwarden-*.whl"))

    @property
    def sdist(self) -> Path:
        return _one(self.folder.glob("patwarden-*.tar.gz"))

    @property
    def requirements(self) -> Path:
        return self.folder / "requirements.txt"


def _one(found: Iterable[Path]) -> Path:
    paths = sorted(found)
    assert len(paths) == 1, f"expected one file, found {paths}"
    return paths[0]


def tool(name: str) -> str:
    """A dev tool installed in the venv (the locked version), else on PATH."""
    path = VENV_BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    assert found, f"{name} is not installed: run `make install`"
    return found


def tool_env() -> dict[str, str]:
    """The environment for build tools: the pinned uv first on PATH."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(TOOLS_BIN), str(VENV_BIN), env.get("PATH", "")])
    return env


def run(
    argv: list[str], *, cwd: Path = REPO, timeout: float = 300, env: dict[str, str] | None = None
) -> str:
    """Run *argv*; on failure the assertion shows its output. Returns stdout and stderr."""
    done = subprocess.run(
        argv,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env if env is not None else tool_env(),
        check=False,
    )
    assert done.returncode == 0, (
        f"{' '.join(argv)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    )
    return done.stdout + done.stderr


def _build(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    installer = ["--installer", "uv"] if (TOOLS_BIN / "uv").exists() else []
    run([sys.executable, "-m", "build", *installer, "--outdir", str(folder), str(REPO)])
    uv = str(TOOLS_BIN / "uv") if (TOOLS_BIN / "uv").exists() else tool("uv")
    extras = [arg for extra in IMAGE_EXTRAS for arg in ("--extra", extra)]
    export = [uv, "export", "--frozen", "--no-dev", "--no-emit-project", *extras]
    run(
        [*export, "--format", "requirements-txt", "--output-file", str(folder / "requirements.txt")]
    )


def built_dist(shared: Path) -> Dist:
    """``make dist``'s output, built once into *shared* (a folder every worker sees)."""
    folder = shared / "deploy-dist"
    with FileLock(str(shared / "deploy-dist.lock")):
        if not (folder / ".complete").exists():
            shutil.rmtree(folder, ignore_errors=True)
            _build(folder)
            (folder / ".complete").touch()
    return Dist(folder)


def cli_accepts(argv: list[str]) -> str:
    """Parse *argv* (after ``patwarden``) with the real CLI's parser, running nothing.

    Resolves nested groups (``config check``, ``state migrate``) and returns the command path;
    raises :class:`click.UsageError` on an unknown command or option or a bad value.
    """
    ctx = patwarden_cli.make_context("patwarden", list(argv))
    command: click.Command = patwarden_cli
    while isinstance(command, click.Group):
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        name, sub, args = command.resolve_command(ctx, rest)
        assert name is not None
        assert sub is not None
        ctx = sub.make_context(name, args, parent=ctx)
        command = sub
    return ctx.command_path


def check_config(text: str, folder: Path) -> str:
    """``patwarden config check`` on a recipe's config (written 0600): valid and no warning."""
    path = folder / "patwarden.yaml"
    path.write_text(text)
    path.chmod(0o600)
    done = cli("config", "check", config=path)
    assert done.code == 0, f"config check refused the recipe's config:\n{done.output}"
    # A recipe follows patwarden's own security advice: config check has nothing to warn about.
    assert "warning:" not in done.output, done.output
    return done.output


def patwarden_commands(script: str) -> list[list[str]]:
    """The ``patwarden …`` command lines of a shell script (after ``patwarden``), for
    :func:`cli_accepts`. Pipes and ``&&`` end a command."""
    found: list[list[str]] = []
    for line in script.replace("\\\n", " ").splitlines():
        for piece in re.split(r"\|\||&&|\||;", line):
            if piece.strip().startswith("patwarden "):
                found.append(shlex.split(piece.strip(), comments=True)[1:])
    return found
