"""When must a human log the rotator in again?"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from patwarden.domain.relogin import (
    REFRESH_TOKEN_INACTIVITY_WINDOW,
    ReloginCause,
    days_until_relogin,
    relogin_deadline,
)

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def test_inactivity_window_slides_from_the_last_renewal() -> None:
    deadline = relogin_deadline(last_renewed=T0 + timedelta(days=10), last_interactive_login=T0)
    assert deadline.cause is ReloginCause.INACTIVITY
    assert deadline.at == T0 + timedelta(days=100)
    assert timedelta(days=90) == REFRESH_TOKEN_INACTIVITY_WINDOW


def test_sign_in_frequency_counts_from_the_interactive_login_not_the_refresh() -> None:
    deadline = relogin_deadline(
        last_renewed=T0 + timedelta(days=6),
        last_interactive_login=T0,
        sign_in_frequency=timedelta(days=7),
    )
    assert deadline.cause is ReloginCause.SIGN_IN_FREQUENCY
    assert deadline.at == T0 + timedelta(days=7)


def test_a_long_sign_in_frequency_does_not_extend_the_inactivity_window() -> None:
    deadline = relogin_deadline(
        last_renewed=T0, last_interactive_login=T0, sign_in_frequency=timedelta(days=365)
    )
    assert deadline.cause is ReloginCause.INACTIVITY
    assert deadline.at == T0 + timedelta(days=90)


@pytest.mark.parametrize(
    ("now", "frequency", "expected"),
    [
        (T0, None, 90.0),
        (T0 + timedelta(days=89, hours=12), None, 0.5),
        (T0 + timedelta(days=91), None, -1.0),
        (T0 + timedelta(days=1), timedelta(days=7), 6.0),
        (T0 + timedelta(hours=18), timedelta(hours=12), -0.25),
    ],
)
def test_days_until_relogin(now: datetime, frequency: timedelta | None, expected: float) -> None:
    days = days_until_relogin(
        now=now, last_renewed=T0, last_interactive_login=T0, sign_in_frequency=frequency
    )
    assert days == pytest.approx(expected)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        relogin_deadline(last_renewed=datetime(2026, 1, 1), last_interactive_login=T0)
    with pytest.raises(ValueError, match="timezone-aware"):
        days_until_relogin(now=datetime(2026, 1, 1), last_renewed=T0, last_interactive_login=T0)


def test_non_positive_sign_in_frequency_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        relogin_deadline(last_renewed=T0, last_interactive_login=T0, sign_in_frequency=timedelta())


def test_the_causes_are_named_as_doctor_prints_them() -> None:
    # `patwarden doctor` prints the cause; sign_in_frequency is also the identity setting's name
    assert [c.value for c in ReloginCause] == ["inactivity", "sign_in_frequency"]
