"""A pause shared by every request of one identity, driven by Azure DevOps' rate-limit headers.

Azure DevOps limits each identity (contract §5, https://learn.microsoft.com/en-us/azure/devops/
integrate/concepts/rate-limits): it may send ``Retry-After`` (seconds, even on 200),
``X-RateLimit-Remaining`` (0 once delayed or blocked) with ``X-RateLimit-Reset`` (Unix epoch when
usage is back to 0), and ``X-RateLimit-Delay`` (how long it already delayed this request). One
:class:`RateLimiter` per identity turns those into a shared "nobody sends before T": once a 429
arrives or Remaining reaches 0, every thread using that identity waits until T.
"""

from __future__ import annotations

import email.utils
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping

from patwarden.azdo.errors import AzdoRateLimited

logger = logging.getLogger(__name__)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _retry_after(value: str | None, *, now: float) -> float | None:
    seconds = _number(value)
    if seconds is not None or value is None:
        return seconds
    try:  # RFC 9110 also allows an HTTP-date
        return email.utils.parsedate_to_datetime(value).timestamp() - now
    except (TypeError, ValueError):
        return None


def advised_wait(headers: Mapping[str, str], *, now: float) -> float | None:
    """Return how many seconds the response's headers ask us to pause, or None if they don't.

    The longest of: ``Retry-After``; ``X-RateLimit-Reset - now`` when ``X-RateLimit-Remaining`` is
    0; ``X-RateLimit-Delay`` (the service is already slowing us down, so space the next request
    by as much). *headers* must be case-insensitive (an ``httpx.Headers``).
    """
    candidates = [_retry_after(headers.get("retry-after"), now=now)]
    if _number(headers.get("x-ratelimit-remaining")) == 0:
        reset = _number(headers.get("x-ratelimit-reset"))
        candidates.append(None if reset is None else reset - now)
    candidates.append(_number(headers.get("x-ratelimit-delay")))
    positive = [c for c in candidates if c is not None and c > 0]
    return max(positive) if positive else None


class RateLimiter:
    """A thread-safe "do not send before" time for one identity, with an injectable clock.

    Share one instance between every client (and thread) acting as the same identity; see
    :class:`RateLimiterRegistry`. *clock* returns Unix time in seconds; *sleep* blocks.
    """

    def __init__(
        self,
        *,
        name: str = "default",
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._not_before = 0.0
        self.waits = 0  # how many times a request waited for a pause (patwarden serve's metrics)

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

    def observe(self, headers: Mapping[str, str]) -> float | None:
        """Apply a response's rate-limit headers; return the advised wait in seconds, if any."""
        wait = advised_wait(headers, now=self._clock())
        if wait is not None:
            logger.info("Azure DevOps asked identity %r to pause %.1f s", self.name, wait)
            self.pause_for(wait)
        return wait

    def wait(self, *, max_wait: float | None = None) -> float:
        """Block until the identity may send; return the seconds waited.

        Raises:
            AzdoRateLimited: the pause is longer than *max_wait* (nothing is slept then).
        """
        waited = 0.0
        while (left := self.remaining()) > 0:
            if max_wait is not None and left > max_wait:
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


class RateLimiterRegistry:
    """One :class:`RateLimiter` per identity name, created on first use (thread-safe)."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._limiters: dict[str, RateLimiter] = {}

    def limiters(self) -> list[RateLimiter]:
        """Every limiter created so far."""
        with self._lock:
            return list(self._limiters.values())

    def get(self, identity: str) -> RateLimiter:
        """Return the limiter shared by every request made as *identity*."""
        with self._lock:
            limiter = self._limiters.get(identity)
            if limiter is None:
                limiter = RateLimiter(name=identity, clock=self._clock, sleep=self._sleep)
                self._limiters[identity] = limiter
            return limiter
