"""The one place patwarden reads the wall clock.

Everything else that needs "now" gets a :class:`Clock` (the CLI's ``AppContext`` holds the one a
run uses), so tests and the emulator harness can pin the date for a whole run.
``tests/test_architecture.py`` checks that no other module calls ``datetime.now``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """The time source. Domain code never calls ``datetime.now``; it gets a Clock."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware (UTC)."""
        ...


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware (UTC)."""
        return datetime.now(UTC)
