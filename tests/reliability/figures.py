"""Counters the reliability suites publish in ``docs/reliability.md``.

Tests call :func:`record` with what they exercised (crash points, faults, bad inputs, leaks
scanned). Nothing is written unless ``RELIABILITY_FIGURES_FILE`` names a file (not a
``PATWARDEN_*`` name: the shared ``clean_environ`` fixture removes those), which
``benchmarks/reliability_figures.py`` sets before running the suites and then sums up. Each
record is one JSON line appended with ``O_APPEND``, so parallel workers do not interleave.
"""

from __future__ import annotations

import json
import os

FIGURES_ENV = "RELIABILITY_FIGURES_FILE"


def record(suite: str, **counts: int | str) -> None:
    """Append one record of ``counts`` for ``suite`` to the figures file, if one is configured."""
    target = os.environ.get(FIGURES_ENV)
    if not target:
        return
    line = (json.dumps({"suite": suite, **counts}, sort_keys=True) + "\n").encode()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
