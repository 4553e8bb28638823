"""Show that each scenario test of issue 17 fails with its planted bug (A, B, C, D, F, H).

Each bug is applied to a private copy of ``src/`` (put first on ``PYTHONPATH``; the working tree is
never touched), its test in ``tests/rotation/test_scenarios.py`` runs, and the first assertion
lines of the failure are printed. A test that passes with its bug applied is a regression of the
suite: the script then exits 1.

    .venv/bin/python benchmarks/scenario_mutants.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST = "tests/rotation/test_scenarios.py"
# name: (file, original text, planted bug, test name prefix)
BUGS = {
    "A": (
        "src/patwarden/rotation/records.py",
        "return not op.step.is_terminal and not op.step.is_tail",
        "return not op.step.is_terminal or not op.step.is_tail",
        "test_a_",
    ),
    "B": (
        "src/patwarden/rotation/actions.py",
        "        except Exception:\n            version = _UNKNOWN",
        "        except Exception:\n            return SinkRestored(sink=key)",
        "test_b_",
    ),
    "C": (
        "src/patwarden/rotation/actions.py",
        "    return written is None or version.ref == written.ref",
        "    return not (written is None or version.ref == written.ref)",
        "test_c_",
    ),
    "D": (
        "src/patwarden/rotation/reconcile.py",
        "current = mine[-1]",
        "current = mine[+1]",
        "test_d_",
    ),
    "F": (
        "src/patwarden/rotation/actions.py",
        "if marker is not None and marker.operation_id == op.operation_id",
        "if marker is not None or marker.operation_id == op.operation_id",
        "test_f_",
    ),
    "H": (
        "src/patwarden/rotation/reconcile.py",
        "            unknown.append(key)\n            continue\n        if version is None:",
        "            unknown.append(key)\n            break\n        if version is None:",
        "test_h_",
    ),
}


def main() -> int:
    survived = []
    for name, (path, original, bug, prefix) in BUGS.items():
        with tempfile.TemporaryDirectory(prefix="patwarden-bug-") as tmp:
            src = Path(tmp) / "src"
            shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__"))
            target = Path(tmp) / path
            text = target.read_text()
            if text.count(original) != 1:
                print(f"bug {name}: {path} changed; update this script", file=sys.stderr)
                return 2
            target.write_text(text.replace(original, bug))
            env = dict(os.environ, PYTHONPATH=str(src), PYTHONDONTWRITEBYTECODE="1")
            argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", TEST, "-k", prefix]
            done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
        lines = done.stdout.splitlines()
        errors = [line for line in lines if line.startswith("E ")][:3]
        verdict = "fails (killed)" if done.returncode == 1 else f"exit {done.returncode}"
        print(f"bug {name} in {path}: {bug.strip()!r}\n  {prefix}*: {verdict}")
        for line in errors:
            print(f"    {line[:160]}")
        if done.returncode == 0:
            survived.append(name)
    print(f"killed={len(BUGS) - len(survived)} of {len(BUGS)}")
    return 1 if survived else 0


if __name__ == "__main__":
    raise SystemExit(main())
