"""Parse and format the date-times Azure DevOps sends and accepts.

The service returns ``validFrom`` with 7 fractional digits, rounds ``validTo`` like SQL
``datetime`` (``…23.319Z`` comes back as ``…23.32Z``) and ends values with ``Z`` (contract §1.4).
Some fields come back without an offset; those are UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_ISO_RE = re.compile(
    r"(?P<base>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?)"
    r"(?:\.(?P<fraction>\d{1,12}))?"
    r"(?P<offset>Z|z|[+-]\d{2}:?\d{2})?"
)


def parse_datetime(value: str) -> datetime:
    """Parse an ISO-8601 date-time with any number of fractional digits into an aware UTC value.

    Fractions beyond microseconds are rounded to the nearest microsecond.

    Raises:
        ValueError: *value* is not an ISO-8601 date-time (callers turn this into a response error).
    """
    match = _ISO_RE.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"not an ISO-8601 date-time: {value!r}")
    base = datetime.fromisoformat(match["base"].replace(" ", "T"))
    fraction = match["fraction"] or "0"
    micros = round(int(fraction) * 10.0 ** (6 - len(fraction)))
    offset = match["offset"]
    if offset and offset not in ("Z", "z"):
        tz_aware = datetime.fromisoformat(f"{match['base'].replace(' ', 'T')}{offset}")
        base = tz_aware.astimezone(UTC).replace(tzinfo=None)
    return base.replace(tzinfo=UTC) + timedelta(microseconds=micros)


def format_datetime(value: datetime) -> str:
    """Format an aware date-time as UTC ISO-8601 with ``Z`` (milliseconds only when non-zero).

    Raises:
        ValueError: *value* is naive (an ambiguous expiry must not be sent).
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("date-times sent to Azure DevOps must be timezone-aware")
    utc = value.astimezone(UTC)
    if utc.microsecond:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")
