"""Start-up time of the CLI against a bare click hello-world, in one run.

Times, as whole processes started with this venv's Python: a click hello-world written to a
temporary directory (the floor: the interpreter, site-packages and click), the same hello-world
building and using one pydantic model (the floor of any command that validates its config with
pydantic), ``patwarden --help``, ``patwarden COMMAND --help`` for every command registered in
``patwarden.cli.main._COMMANDS``, and ``patwarden status`` on a config with zero tokens, twice:
as it runs while the config is unchanged (it reads its snapshot of the config,
:mod:`patwarden.app.snapshot`) and as the first status after an edit (it loads the config). Every
program runs once to warm the page cache (and to write any bytecode a non-compiled install still
lacks), then ``--runs`` rounds run each program once in a shuffled order, so that load from other
processes falls on all of them alike. Prints each median and its ratio to the hello-world, then
``help_ratio=X.XX`` (the worst of ``--help`` and every ``COMMAND --help``),
``pydantic_floor_ratio=X.XX``, ``status_loaded_ratio=X.XX`` (the first status after an edit)
and, last, ``status_ratio=X.XX``. Targets (issue #16):
``help_ratio <= 1.3``, ``status_ratio <= 3``.

    .venv/bin/python benchmarks/startup.py [--runs 11]
    .venv/bin/python benchmarks/startup.py --instructions   # valgrind: instructions, not time

``--instructions`` runs each program once under ``valgrind --tool=callgrind`` and compares the
instructions executed (user space): a figure that does not move with the machine's load, for a
shared machine where wall times are noise. It prints ``help_ratio_ir=``,
``pydantic_floor_ratio_ir=``, ``status_loaded_ratio_ir=`` and ``status_ratio_ir=``.

What to defer when a ratio grows: ``.venv/bin/python -X importtime -m patwarden status --config F``.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

PYTHON = sys.version.split()[0]
HELP_TARGET = 1.3
STATUS_TARGET = 3.0
HELLO = '''\
import click


@click.command()
def hello() -> None:
    """Say hello."""
    click.echo("hello")


hello()
'''
# The floor of any command that validates with pydantic: the hello-world plus one model, built
# and used once. patwarden's config is 32 such models (docs/performance.md#start-up).
PYDANTIC_FLOOR = '''\
import click
from pydantic import BaseModel


class Floor(BaseModel):
    name: str


@click.command()
def hello() -> None:
    """Say hello."""
    click.echo(Floor(name="hello").name)


hello()
'''
# A config with zero tokens: an organization and a rotator user whose token cache is empty.
EMPTY_CONFIG = """\
azure:
  tenant_id: 00000000-0000-0000-0000-0000000000aa
organization: contoso
state_dir: {state}
identities:
  rotator:
    kind: user
    client_id: 00000000-0000-0000-0000-000000000001
    username: rotator@contoso.example
    cache:
      kind: file
      key:
        env: PATWARDEN_BENCH_CACHE_KEY
rotator: rotator
tokens: {{}}
"""


def patwarden_script() -> str:
    """The console script next to this interpreter (what a user runs)."""
    script = Path(sys.executable).with_name("patwarden")
    if not script.exists():
        sys.exit(f"{script} is missing: run `make install` first")
    return str(script)


def registered_commands() -> list[str]:
    from patwarden.cli.main import _COMMANDS

    return sorted(_COMMANDS)


def programs(workdir: Path) -> dict[str, list[str]]:
    """Label -> argv of every program to time; the hello-world first."""
    hello = workdir / "hello.py"
    hello.write_text(HELLO)
    config = workdir / "patwarden.yaml"
    config.write_text(EMPTY_CONFIG.format(state=workdir / "state"))
    config.chmod(0o600)
    patwarden = patwarden_script()
    floor = workdir / "pydantic_floor.py"
    floor.write_text(PYDANTIC_FLOOR)
    found: dict[str, list[str]] = {"hello-world": [sys.executable, str(hello)]}
    found["hello-world + 1 pydantic model"] = [sys.executable, str(floor)]
    found["patwarden --help"] = [patwarden, "--help"]
    for name in registered_commands():
        found[f"patwarden {name} --help"] = [patwarden, name, "--help"]
    status = [patwarden, "status", "--config", str(config), "-o", "json"]
    found["patwarden status"] = status
    found["patwarden status, config edited"] = status  # run with EDITED (see environment())
    return found


# The first status after the config changed: no snapshot to read (patwarden.app.snapshot), so it
# loads the config. A cache directory others may write is one where status neither reads nor
# writes a snapshot, so every run of this program loads the config.
EDITED = "patwarden status, config edited"


def run_once(argv: Sequence[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, env=env, check=False
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {result.returncode}:\n{result.stderr.decode()}")
    return elapsed


def bytecode_files() -> int:
    """How many .pyc files the venv and patwarden's source tree hold."""
    import patwarden

    venv, source = Path(sys.prefix), Path(patwarden.__file__).parents[1]
    roots = [venv] if source.is_relative_to(venv) else [venv, source]
    return sum(1 for root in roots for _ in root.rglob("*.pyc"))


def instructions(argv: Sequence[str], env: dict[str, str]) -> int:
    """Instructions one run of *argv* executes, counted by valgrind's callgrind."""
    tool = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    result = subprocess.run(
        [*tool, *argv], stdin=subprocess.DEVNULL, capture_output=True, env=env, check=False
    )
    found = re.search(rb"Collected : (\d+)", result.stderr)
    if result.returncode != 0 or found is None:
        sys.exit(f"valgrind {' '.join(argv)} failed:\n{result.stderr.decode()[-2000:]}")
    return int(found.group(1))


def report(figures: dict[str, float], *, unit: str, suffix: str) -> None:
    """Each figure and its ratio to the hello-world, then the help and status ratio lines."""
    floor = figures["hello-world"]
    for label, value in figures.items():
        print(f"{label:<34} {value:9.1f} {unit}  {value / floor:5.2f}x")
    helps = {label: v for label, v in figures.items() if label.endswith("--help")}
    slowest = max(helps, key=helps.__getitem__)
    print(f"slowest help: {slowest} (target {HELP_TARGET}x); status target {STATUS_TARGET}x")
    print(f"help_ratio{suffix}={helps[slowest] / floor:.2f}")
    pydantic = figures["hello-world + 1 pydantic model"]
    print(f"pydantic_floor_ratio{suffix}={pydantic / floor:.2f}")
    loaded = figures[EDITED]
    print(f"status_loaded_ratio{suffix}={loaded / floor:.2f}")
    print(f"status_ratio{suffix}={figures['patwarden status'] / floor:.2f}")


def environments(workdir: Path, labels: Sequence[str]) -> dict[str, dict[str, str]]:
    """Label -> the environment its program runs in (the same for all but EDITED)."""
    env = environment(workdir)
    unsafe = workdir / "shared-cache"
    (unsafe / "patwarden" / "status").mkdir(parents=True)
    (unsafe / "patwarden" / "status").chmod(0o777)
    return {
        label: {**env, "XDG_CACHE_HOME": str(unsafe)} if label == EDITED else env
        for label in labels
    }


def environment(workdir: Path) -> dict[str, str]:
    from patwarden.identity.cache_crypto import generate_cache_key

    # Bytecode as a real install has it: PYTHONDONTWRITEBYTECODE would make every process of an
    # editable checkout whose src/ is not compiled recompile what it imports.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PATWARDEN_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    env["PATWARDEN_BENCH_CACHE_KEY"] = generate_cache_key().reveal()
    env["HOME"] = str(workdir)  # no user config or cache of the person running it
    env.pop("XDG_CACHE_HOME", None)  # status keeps its config snapshot in HOME/.cache
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=11, help="rounds (median of these; >= 7)")
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions with valgrind instead"
    )
    args = parser.parse_args()
    if args.runs < 7:
        parser.error("--runs must be at least 7")
    with tempfile.TemporaryDirectory(prefix="patwarden-startup-") as tmp:
        workdir = Path(tmp)
        table = programs(workdir)
        env = environments(workdir, list(table))
        compiled = bytecode_files()
        for label, argv in table.items():  # warm-up, not counted
            run_once(argv, env[label])
        written = f"bytecode files the warm-up wrote: {bytecode_files() - compiled} (0: compiled)"
        if args.instructions:
            counts = {label: instructions(argv, env[label]) / 1e6 for label, argv in table.items()}
            print(f"instructions (millions), one valgrind run each; python {PYTHON}")
            print(written)
            report(counts, unit="M", suffix="_ir")
            return
        times: dict[str, list[float]] = {label: [] for label in table}
        order = list(table)
        shuffle = random.Random(16)
        for _ in range(args.runs):
            shuffle.shuffle(order)
            for label in order:
                times[label].append(run_once(table[label], env[label]))
    medians = {label: statistics.median(values) * 1000 for label, values in times.items()}
    print(f"{args.runs} interleaved runs each, medians; python {PYTHON}")
    print(written)
    report(medians, unit="ms", suffix="")


if __name__ == "__main__":
    main()
