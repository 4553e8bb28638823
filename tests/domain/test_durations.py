"""Duration strings as written in config."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patwarden.domain.durations import DurationError, format_duration, parse_duration
from patwarden.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        ("2w", timedelta(weeks=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("1w2d3h4m5s", timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5)),
        (" 7D ", timedelta(days=7)),
        ("0s", timedelta()),
    ],
)
def test_parses(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "30", "d", "30x", "1.5d", "-1d", "30 d", "1h1d", "1d1d", "P30D", "thirty days"]
)
def test_rejects_with_a_config_error_that_shows_the_form(text: str) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration(text)
    assert isinstance(caught.value, ConfigError)
    assert caught.value.exit_code == 2
    assert caught.value.hint is not None
    assert "e.g." in caught.value.hint


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(), "0s"),
        (timedelta(days=30), "30d"),
        (timedelta(days=1, hours=12), "1d12h"),
        (timedelta(minutes=90), "1h30m"),
        (timedelta(seconds=45, microseconds=900), "45s"),
    ],
)
def test_formats(value: timedelta, text: str) -> None:
    assert format_duration(value) == text


def test_format_refuses_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        format_duration(timedelta(seconds=-1))


@given(st.integers(min_value=0, max_value=10**9))
def test_format_then_parse_round_trips(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value


@pytest.mark.parametrize("text", ["99999999999999999999d", "1000000000w", "9" * 400 + "s"])
def test_a_duration_too_long_for_timedelta_is_a_duration_error(text: str) -> None:
    # Found by tests/reliability: it escaped as OverflowError and `config check` exited 70.
    with pytest.raises(DurationError, match="longer than any duration patwarden can use"):
        parse_duration(text)
