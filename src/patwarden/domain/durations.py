"""Durations as people write them in config: ``30d``, ``12h``, ``90m``, ``45s``, ``1d12h``.

Pure: no I/O. The config layer turns :class:`DurationError` into a message with a key path.
"""

from __future__ import annotations

import re
from datetime import timedelta

from patwarden.errors import ConfigError

_UNITS: dict[str, timedelta] = {
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
}
_PART = re.compile(r"(\d+)([wdhms])")
_WHOLE = re.compile(r"(?:\d+[wdhms])+")
EXAMPLES = "30d, 12h, 90m, 45s or 1d12h"


class DurationError(ConfigError):
    """A duration string is not of the form ``<number><unit>``."""


def parse_duration(text: str) -> timedelta:
    """Parse ``30d`` / ``12h`` / ``90m`` / ``45s`` / ``2w`` (or a run of them, ``1d12h``).

    Units: ``w`` weeks, ``d`` days, ``h`` hours, ``m`` minutes, ``s`` seconds. Each unit may
    appear once, largest first. Zero is allowed here; callers that need a positive value check it.

    Raises:
        DurationError: the text is empty, has an unknown unit, repeats a unit, has no unit, or is
            too long for a ``timedelta`` (about 2.7 million years).
    """
    compact = text.strip().lower()
    if not _WHOLE.fullmatch(compact):
        raise DurationError(
            f"{text!r} is not a duration",
            hint=f"write a number followed by a unit (w, d, h, m, s), e.g. {EXAMPLES}",
        )
    parts = _PART.findall(compact)
    units = [unit for _, unit in parts]
    order = list(_UNITS)
    if len(set(units)) != len(units) or units != sorted(units, key=order.index):
        raise DurationError(
            f"{text!r} repeats a unit or lists them out of order",
            hint="list each unit once, largest first, e.g. 1d12h",
        )
    try:
        return sum((int(number) * _UNITS[unit] for number, unit in parts), timedelta())
    except OverflowError:
        raise DurationError(
            f"{text[:40]!r} is longer than any duration patwarden can use",
            hint=f"write a realistic duration, e.g. {EXAMPLES}",
        ) from None


def format_duration(value: timedelta) -> str:
    """Render a non-negative duration in the compact form :func:`parse_duration` reads (``1d12h``).

    Sub-second parts are dropped; zero renders as ``0s``.

    Raises:
        ValueError: the duration is negative (a programming error, not user input).
    """
    if value < timedelta():
        raise ValueError("negative durations have no compact form")
    remaining = int(value.total_seconds())
    pieces: list[str] = []
    for unit in ("d", "h", "m", "s"):
        size = int(_UNITS[unit].total_seconds())
        count, remaining = divmod(remaining, size)
        if count:
            pieces.append(f"{count}{unit}")
    return "".join(pieces) or "0s"
