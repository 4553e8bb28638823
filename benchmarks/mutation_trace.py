"""A pytest plugin for ``benchmarks/mutation.py``: which test runs which line of the targets.

Loaded with ``-p mutation_trace`` (``benchmarks/`` on ``PYTHONPATH``) in one run of the test pool
before the mutants: it traces the lines each test executes (setup, call and teardown, in every
thread) in the files under ``MUTATION_TRACE_SRC`` named by ``MUTATION_TRACE_FILES`` and writes,
to ``MUTATION_TRACE_OUT`` as JSON, per test in run order: its outcome, its duration and those
lines. Code a test runs in a child process is not seen.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Generator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

_SRC = Path(os.environ.get("MUTATION_TRACE_SRC", "src")).resolve()
_FILES = {
    str(_SRC.parent / rel): rel
    for rel in os.environ.get("MUTATION_TRACE_FILES", "").split(os.pathsep)
    if rel
}
_hits: dict[str, set[int]] = {}  # file -> lines, for the test running now
_tests: dict[str, dict[str, Any]] = {}


def _local(frame: FrameType, event: str, arg: object) -> Any:
    if event == "line":
        _hits.setdefault(frame.f_code.co_filename, set()).add(frame.f_lineno)
    return _local


def _global(frame: FrameType, event: str, arg: object) -> Any:
    if frame.f_code.co_filename in _FILES:
        if event == "call":
            _hits.setdefault(frame.f_code.co_filename, set()).add(frame.f_lineno)
        return _local
    return None


def pytest_configure(config: pytest.Config) -> None:
    sys.settrace(_global)
    threading.settrace(_global)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    _hits.clear()
    started = time.monotonic()
    if sys.gettrace() is not _global:  # something (a debugger, hypothesis) replaced it
        sys.settrace(_global)
    yield
    entry = _tests.setdefault(item.nodeid, {"outcome": "passed"})
    entry["seconds"] = round(time.monotonic() - started, 3)
    entry["lines"] = {_FILES[f]: sorted(lines) for f, lines in _hits.items() if f in _FILES}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed:
        _tests.setdefault(report.nodeid, {})["outcome"] = "failed"


def pytest_unconfigure(config: pytest.Config) -> None:
    sys.settrace(None)
    threading.settrace(None)  # type: ignore[arg-type]
    out = os.environ.get("MUTATION_TRACE_OUT")
    if out:
        Path(out).write_text(json.dumps(_tests))
