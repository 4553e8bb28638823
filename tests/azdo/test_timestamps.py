from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from patwarden.azdo.timestamps import format_datetime, parse_datetime


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-06-01T09:12:44.1033333Z", datetime(2026, 6, 1, 9, 12, 44, 103333, tzinfo=UTC)),
        ("2026-07-01T00:00:00Z", datetime(2026, 7, 1, tzinfo=UTC)),
        ("2026-07-01T00:00:23.32Z", datetime(2026, 7, 1, 0, 0, 23, 320000, tzinfo=UTC)),
        ("2026-07-01T00:00:23.9999996Z", datetime(2026, 7, 1, 0, 0, 24, tzinfo=UTC)),
        ("2026-07-01T02:00:00+02:00", datetime(2026, 7, 1, tzinfo=UTC)),
        ("2026-07-01T00:00:00", datetime(2026, 7, 1, tzinfo=UTC)),
        ("2026-07-01 00:00:00.5z", datetime(2026, 7, 1, 0, 0, 0, 500000, tzinfo=UTC)),
    ],
)
def test_parse_tolerates_service_formats(text: str, expected: datetime) -> None:
    parsed = parse_datetime(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01T00:00:00Z", "2026-07-01"])
def test_parse_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match=r"date-time|month"):
        parse_datetime(text)


def test_format_is_utc_z_with_milliseconds_only_when_needed() -> None:
    tz = timezone(timedelta(hours=2))
    assert format_datetime(datetime(2026, 7, 1, 2, tzinfo=tz)) == "2026-07-01T00:00:00Z"
    assert (
        format_datetime(datetime(2026, 7, 1, 0, 0, 23, 319000, tzinfo=UTC))
        == "2026-07-01T00:00:23.319Z"
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        format_datetime(datetime(2026, 7, 1))
