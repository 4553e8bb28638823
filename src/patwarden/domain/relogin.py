"""When will the rotator's sign-in stop working? Pure date arithmetic, no I/O.

Two clocks bound a user refresh token (azure-api-contract §4.5):

* **inactivity** — a refresh token unused for 90 days expires (AADSTS700082). Every silent refresh
  returns a new one, so the window slides from the *last renewal*.
* **sign-in frequency** — a Conditional Access policy can demand a fresh interactive sign-in every N
  (AADSTS70043), counted from the *last interactive login*, however often the token is refreshed.

The earlier of the two is when a human must run ``patwarden login`` again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

REFRESH_TOKEN_INACTIVITY_WINDOW = timedelta(days=90)


class ReloginCause(StrEnum):
    """Which limit ends the current sign-in first."""

    INACTIVITY = "inactivity"  # 90 days without a refresh (AADSTS700082)
    SIGN_IN_FREQUENCY = "sign_in_frequency"  # Conditional Access sign-in frequency (AADSTS70043)


@dataclass(frozen=True, kw_only=True)
class ReloginDeadline:
    """The moment a new interactive login becomes necessary, and why."""

    at: datetime
    cause: ReloginCause

    def days_left(self, now: datetime) -> float:
        """Days from ``now`` until the deadline (negative once it has passed)."""
        return (self.at - now) / timedelta(days=1)


def relogin_deadline(
    *,
    last_renewed: datetime,
    last_interactive_login: datetime,
    sign_in_frequency: timedelta | None = None,
    inactivity_window: timedelta = REFRESH_TOKEN_INACTIVITY_WINDOW,
) -> ReloginDeadline:
    """Return when the cached sign-in runs out if nobody logs in interactively again.

    ``last_renewed`` is when Entra last issued a refresh token (at login or on a silent refresh);
    ``last_interactive_login`` is when a human last completed ``patwarden login``. All datetimes
    must be timezone-aware.

    Raises:
        ValueError: a datetime is naive, or a window is not positive.
    """
    for name, value in (
        ("last_renewed", last_renewed),
        ("last_interactive_login", last_interactive_login),
    ):
        if value.tzinfo is None:
            raise ValueError(f"{name} must be timezone-aware")
    if inactivity_window <= timedelta():
        raise ValueError("inactivity_window must be positive")
    inactivity = ReloginDeadline(at=last_renewed + inactivity_window, cause=ReloginCause.INACTIVITY)
    if sign_in_frequency is None:
        return inactivity
    if sign_in_frequency <= timedelta():
        raise ValueError("sign_in_frequency must be positive")
    frequency = ReloginDeadline(
        at=last_interactive_login + sign_in_frequency, cause=ReloginCause.SIGN_IN_FREQUENCY
    )
    return frequency if frequency.at < inactivity.at else inactivity


def days_until_relogin(
    *,
    now: datetime,
    last_renewed: datetime,
    last_interactive_login: datetime,
    sign_in_frequency: timedelta | None = None,
) -> float:
    """Days left before ``patwarden login`` must be run again (negative: already overdue).

    Raises:
        ValueError: a datetime is naive, or ``sign_in_frequency`` is not positive.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    deadline = relogin_deadline(
        last_renewed=last_renewed,
        last_interactive_login=last_interactive_login,
        sign_in_frequency=sign_in_frequency,
    )
    return deadline.days_left(now)
