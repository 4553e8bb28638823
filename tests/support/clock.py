"""The tests' "now": the wall clock, or a pinned date so that a time bomb shows on any day.

Set ``PATWARDEN_TEST_NOW`` (an ISO-8601 date or date-time, UTC) to run the suite as if the session
started at that moment; the clock keeps running from there. Everything that has a notion of "now"
then agrees on it:

- tests read :func:`now` (seed data relative to it, never to the real date);
- the emulator's business clock is moved to it (``PUT /_admin/clock``, see
  :mod:`patwarden_emulator.clock`) when :func:`tests.support.emulator.start_emulator` starts one;
- the product's CLI runs through :data:`PINNED_CLI`, a test-only entry point that hands
  ``patwarden.cli.main.main`` a clock shifted by the same offset (product code never reads these
  variables: it is given a clock).

The offset is fixed once per process and passed to child processes in
``PATWARDEN_TEST_CLOCK_OFFSET`` (seconds), so a test and the processes it starts share it.
CI runs the tests marked ``dates`` at three pinned dates (see ``.ci/run`` and CONTRIBUTING.md).
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

PIN_ENV = "PATWARDEN_TEST_NOW"
OFFSET_ENV = "PATWARDEN_TEST_CLOCK_OFFSET"
PINNED_CLI = Path(__file__).with_name("pinned_cli.py")


def _parse(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _offset_from_environment() -> timedelta:
    if os.environ.get(OFFSET_ENV):
        return timedelta(seconds=float(os.environ[OFFSET_ENV]))
    if os.environ.get(PIN_ENV):
        return _parse(os.environ[PIN_ENV]) - datetime.now(UTC)
    return timedelta(0)


OFFSET = _offset_from_environment()


def is_pinned() -> bool:
    """Whether this run's clock is shifted away from the wall clock."""
    return timedelta(0) != OFFSET


def now() -> datetime:
    """The tests' current time (UTC, aware)."""
    return datetime.now(UTC) + OFFSET


class TestClock:
    """A :class:`patwarden.clock.Clock` reading :func:`now`."""

    __test__ = False  # not a pytest test class

    def now(self) -> datetime:
        return now()


def child_environment() -> dict[str, str]:
    """Variables a child process needs to share this process's clock (empty when not pinned)."""
    return {OFFSET_ENV: repr(OFFSET.total_seconds())} if is_pinned() else {}


def patwarden_argv(python: str = sys.executable) -> list[str]:
    """How to start the product's CLI: ``python -m patwarden``, or the pinned-clock entry point."""
    return [python, str(PINNED_CLI)] if is_pinned() else [python, "-m", "patwarden"]
