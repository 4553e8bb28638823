"""Test-only entry point: the patwarden CLI with its clock shifted by $PATWARDEN_TEST_CLOCK_OFFSET.

``python tests/support/pinned_cli.py ARGS`` is ``patwarden ARGS`` run at the tests' pinned date
(see :mod:`tests.support.clock`). It hands the CLI a clock through ``patwarden.cli.main.main``,
the same seam every command reads "now" from; the product itself never reads these variables.
Self-contained on purpose: it runs as a script from any working directory.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from patwarden.cli.main import main


class ShiftedClock:
    """The wall clock plus a fixed offset."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


if __name__ == "__main__":
    seconds = float(os.environ.get("PATWARDEN_TEST_CLOCK_OFFSET") or 0)
    main(clock=ShiftedClock(timedelta(seconds=seconds)))
