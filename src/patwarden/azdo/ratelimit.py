"""Pauses and pacing shared by every request of one identity, from Azure DevOps' rate-limit headers.

Azure DevOps limits each identity (contract §5, https://learn.microsoft.com/azure/devops/
integrate/concepts/rate-limits, "HTTP response headers"): it may send ``Retry-After`` (seconds,
even on 200), ``X-RateLimit-Limit`` and ``X-RateLimit-Remaining`` (TSTUs allowed and left before
delays; Remaining is 0 once delayed or blocked), ``X-RateLimit-Reset`` (Unix time *on the
service's clock* when usage would be back to 0) and ``X-RateLimit-Delay`` (how long it already
delayed this request). One :class:`RateLimiter` per identity and resource, shared by every worker
of the process, does two things with them:

- it *paces*: :class:`~patwarden.azdo.pacing.Pacer` spreads the budget evenly over the window, so
  a fleet approaches the budget's rate without reaching Remaining 0 (no 429, no whole-window
  stall);
- it *pauses* every thread when the service asks (``Retry-After``, ``X-RateLimit-Delay``; a
  ``Reset`` only when nothing else says when to resume).

Clock skew: ``Reset`` and an HTTP-date ``Retry-After`` are read against the answer's ``Date``
(the service's own clock), never against ours, so a client clock seconds behind or ahead of the
service neither lengthens a pause nor fails a run; the one-second resolution of those headers is
tolerated by :data:`CLOCK_TOLERANCE` when a pause is compared with the longest allowed wait.
"""

from __future__ import annotations

import email.utils
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from patwarden.azdo.errors import AzdoRateLimited
from patwarden.azdo.pacing import Budget, Pacer

logger = logging.getLogger(__name__)

AZURE_DEVOPS = "azure-devops"  # the resource every Azure DevOps client counts against
# Seconds a pause may exceed the longest allowed wait: Date and Reset have one-second resolution,
# and without a Date header Reset is read against our clock, which may be a few seconds off.
CLOCK_TOLERANCE = 5.0
_PROBE_POLL = 0.01  # seconds between looks for the first answer (see pacing.PROBE_HOLD)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _retry_after(value: str | None, *, now: float) -> float | None:
    seconds = _number(value)
    if seconds is not None or value is None:
        return seconds
    when = _http_date(value)  # RFC 9110 also allows an HTTP-date
    return None if when is None else when - now


def retry_after(headers: Mapping[str, str], *, now: float) -> float | None:
    """The seconds ``Retry-After`` asks for (a number, or an HTTP-date read against the answer's
    ``Date``, else *now*; may be 0 or negative), or None without a readable one. *headers* must
    be case-insensitive (an ``httpx.Headers``)."""
    return _retry_after(headers.get("retry-after"), now=_http_date(headers.get("date")) or now)


def budget_of(headers: Mapping[str, str], *, status: int | None = None) -> Budget:
    """The ``X-RateLimit-*`` budget and ``Date`` of an answer (case-insensitive *headers*)."""
    limit = _number(headers.get("x-ratelimit-limit"))
    remaining = _number(headers.get("x-ratelimit-remaining"))
    return Budget(
        limit=None if limit is None else int(limit),
        remaining=None if remaining is None else int(remaining),
        reset=_number(headers.get("x-ratelimit-reset")),
        date=_http_date(headers.get("date")),
        blocked=status == 429,
    )


def advised_wait(headers: Mapping[str, str], *, now: float) -> float | None:
    """Return how many seconds the response's headers ask us to pause, or None if they don't.

    The longer of ``Retry-After`` and ``X-RateLimit-Delay`` (the service is already slowing us
    down, so space the next request by as much). ``X-RateLimit-Reset - now`` only when
    ``X-RateLimit-Remaining`` is 0 and neither of those nor ``X-RateLimit-Limit`` came: Reset is
    when *all* usage has left the sliding window, so waiting for it is a whole-window stall; with
    a Limit the pacer spreads the requests instead. *now* is the answer's ``Date`` when it has one
    (the service's clock, so our clock's skew does not count), else our clock. *headers* must be
    case-insensitive (an ``httpx.Headers``).
    """
    server_now = _http_date(headers.get("date")) or now
    retry = retry_after(headers, now=now)
    delay = _number(headers.get("x-ratelimit-delay"))
    candidates = [retry, delay]
    if (
        retry is None
        and delay is None
        and headers.get("x-ratelimit-limit") is None
        and _number(headers.get("x-ratelimit-remaining")) == 0
    ):
        reset = _number(headers.get("x-ratelimit-reset"))
        candidates.append(None if reset is None else reset - server_now)
    positive = [c for c in candidates if c is not None and c > 0]
    return max(positive) if positive else None


@dataclass(frozen=True)
class Ticket:
    """One request's place in its identity's pacing: hand it back to :meth:`RateLimiter.observe`."""

    number: int
    sent_at: float


class RateLimiter:
    """Pacing and a thread-safe "do not send before" time for one identity and resource.

    Share one instance between every client (and thread) acting as the same identity; see
    :class:`RateLimiterRegistry`. *clock* returns Unix time in seconds (the run's clock); *sleep*
    blocks. Pacing only needs the clock's differences, so its skew does not matter.
    """

    def __init__(
        self,
        *,
        name: str = "default",
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        pacer: Pacer | None = None,
    ) -> None:
        self.name = name
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._not_before = 0.0
        self._pacer = pacer or Pacer()
        self.waits = 0  # how many times a request waited for a pause (patwarden serve's metrics)
        self.paced = 0  # how many requests waited for their paced slot

    def now(self) -> float:
        """Return the limiter's current time (Unix seconds)."""
        return self._clock()

    def sleep(self, seconds: float) -> None:
        """Block for *seconds* with the limiter's sleep (used for retry backoff too)."""
        if seconds > 0:
            self._sleep(seconds)

    def pause_until(self, when: float) -> None:
        """Make every request of this identity wait until *when* (never shortens a pause)."""
        with self._lock:
            self._not_before = max(self._not_before, when)

    def pause_for(self, seconds: float) -> None:
        """Make every request of this identity wait *seconds* from now."""
        self.pause_until(self._clock() + seconds)

    def remaining(self) -> float:
        """Return the seconds left in the current pause (0 when requests may go)."""
        with self._lock:
            return max(0.0, self._not_before - self._clock())

    def interval(self) -> float:
        """The paced spacing between two requests of this identity (0 until learnt)."""
        with self._lock:
            return self._pacer.interval()

    def observe(
        self,
        headers: Mapping[str, str],
        *,
        ticket: Ticket | None = None,
        status: int | None = None,
    ) -> float | None:
        """Apply a response's rate-limit headers; return the advised wait in seconds, if any.

        With the *ticket* of the request, its budget headers also tune the pacing.
        """
        now = self._clock()
        if ticket is not None:
            budget = budget_of(headers, status=status)
            with self._lock:
                self._pacer.learn(
                    budget, ticket=ticket.number, sent_at=ticket.sent_at, received_at=now
                )
        wait = advised_wait(headers, now=now)
        if wait is not None:
            logger.info("Azure DevOps asked identity %r to pause %.1f s", self.name, wait)
            self.pause_for(wait)
        return wait

    def wait(self, *, max_wait: float | None = None) -> float:
        """Block until no pause holds the identity; return the seconds waited.

        Raises:
            AzdoRateLimited: the pause is longer than *max_wait* (plus :data:`CLOCK_TOLERANCE`;
                nothing is slept then).
        """
        waited = 0.0
        while (left := self.remaining()) > 0:
            if max_wait is not None and left > max_wait + CLOCK_TOLERANCE:
                raise AzdoRateLimited(
                    f"Azure DevOps rate-limits identity {self.name!r}: it asked to pause "
                    f"{left:.0f} s, longer than the {max_wait:.0f} s patwarden waits in one run.",
                    retry_after=left,
                    status=None,
                    hint=f"Run again in {left:.0f} s; spread scheduled runs of this identity.",
                )
            self._sleep(left)
            waited += left
            self.waits += 1
        return waited

    def acquire(self, *, max_wait: float | None = None) -> Ticket:
        """Wait for any pause, then for this request's paced slot; return its :class:`Ticket`.

        Raises:
            AzdoRateLimited: as :meth:`wait`.
        """
        self.wait(max_wait=max_wait)
        while True:
            with self._lock:
                reserved = self._pacer.reserve(self._clock())
            if reserved is not None:
                break
            self._sleep(_PROBE_POLL)  # the first request's answer tells the budget
        number, slot = reserved
        if (ahead := slot - self._clock()) > 0:
            self.paced += 1
            self._sleep(ahead)
        self.wait(max_wait=max_wait)  # a 429 may have paused the identity meanwhile
        return Ticket(number=number, sent_at=self._clock())


class RateLimiterRegistry:
    """One :class:`RateLimiter` per (identity, resource), created on first use (thread-safe)."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._limiters: dict[tuple[str, str], RateLimiter] = {}

    def limiters(self) -> list[RateLimiter]:
        """Every limiter created so far."""
        with self._lock:
            return list(self._limiters.values())

    def get(self, identity: str, resource: str = AZURE_DEVOPS) -> RateLimiter:
        """Return the limiter shared by every request made as *identity* to *resource*."""
        with self._lock:
            limiter = self._limiters.get((identity, resource))
            if limiter is None:
                limiter = RateLimiter(name=identity, clock=self._clock, sleep=self._sleep)
                self._limiters[(identity, resource)] = limiter
            return limiter
