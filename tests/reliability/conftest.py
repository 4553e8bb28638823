"""Fixtures of the reliability suites: the leak scanner every suite uses, and log capture.

``leak_scan`` is a :class:`~tests.reliability.leaks.LeakScanner` that, for the whole test,
receives every log record at every level (the root logger is put at DEBUG), and at the end scans
what the test captured and watched for every secret the emulator issued. A test that uses the
``emulator`` fixture gets the scanner wired to it. Other suites can import ``leak_scan`` from
here (``from tests.reliability.conftest import leak_scan``) or build a ``LeakScanner`` directly.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.reliability.figures import record
from tests.reliability.leaks import LeakScanner


def pytest_configure(config: pytest.Config) -> None:
    """Know xdist's ``xdist_group`` marker when xdist is off (``-p no:xdist``, strict markers)."""
    config.addinivalue_line("markers", "xdist_group(name): run these tests on one xdist worker")


class _Collect(logging.Handler):
    """Formats every record (with its traceback) into one text the scanner reads."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a record that cannot be formatted is still scanned raw
            self.lines.append(f"{record.msg!r} {record.args!r}")


@pytest.fixture
def leak_scan(request: pytest.FixtureRequest) -> Iterator[LeakScanner]:
    """A leak scanner for this test; fails the test at teardown if any secret leaked."""
    scanner = LeakScanner()
    if "emulator" in request.fixturenames:
        scanner.emulator = request.getfixturevalue("emulator")
    handler = _Collect()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield scanner
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    scanner.capture("log records", "\n".join(handler.lines))
    leaks = scanner.leaks()
    record(
        "secrets",
        test=request.node.nodeid,
        leaks=len(leaks),
        secrets=scanner.secrets_checked,
        texts=len(scanner.texts),
        files=scanner.files_scanned,
    )
    assert not leaks, "secrets leaked: " + "; ".join(sorted({str(leak) for leak in leaks}))
