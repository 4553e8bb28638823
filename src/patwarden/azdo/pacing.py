"""Spreading one identity's Azure DevOps budget evenly over its window, so it is never exhausted.

Azure DevOps counts each identity's usage in TSTUs over a sliding five-minute window and reports
it on its answers (https://learn.microsoft.com/azure/devops/integrate/concepts/rate-limits, "HTTP
response headers"): ``X-RateLimit-Limit`` (TSTUs allowed before delays are imposed),
``X-RateLimit-Remaining`` (TSTUs left before being delayed; 0 once delayed or blocked) and
``X-RateLimit-Reset`` (the Unix time, *on the service's clock*, at which usage would be back to 0
if all consumption stopped now). Reacting only once Remaining reaches 0 sends the whole budget in
a burst and then stops every worker for a whole window; :class:`Pacer` instead hands out send
times ("slots") an even ``window / (limit - margin)`` apart, so a fleet runs at the budget's rate
without ever reaching 0:

- the window is not sent: it is learnt, as a safe upper bound, from ``Reset - send time`` (the
  window plus the service's clock offset) less ``Date - receive time`` (at most that offset).
  Both are differences taken on the same local clock, so a client clock seconds behind or ahead
  of the service changes nothing; with many answers the bound tightens to the window plus the
  round-trip time (``Date`` and ``Reset`` have one-second resolution);
- it mirrors the service's sliding window with its own send times: never more than
  ``limit - margin`` sends in any window (a burst sent before the first answer is absorbed by a
  short hold, not a whole-window stall);
- and it trusts the service's count: when Remaining, less the requests sent since that answer,
  reaches 0 (another process is using the identity), the next slot moves back by as many
  intervals as the budget is short.

Not thread-safe: :class:`patwarden.azdo.ratelimit.RateLimiter` calls it under its lock. Times are
seconds on the caller's clock; nothing here reads a clock or sleeps.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

MARGIN_FRACTION = 0.02  # of the limit, kept unused: room for requests in flight and rounding


@dataclass(frozen=True)
class Budget:
    """What one answer said about the identity's budget (None: header absent or unreadable)."""

    limit: int | None = None
    remaining: int | None = None
    reset: float | None = None  # Unix time on the service's clock
    date: float | None = None  # the answer's Date header, Unix time on the service's clock
    blocked: bool = False  # a 429: its Reset describes an older request, not this one


class Pacer:
    """Even send times for one identity and resource, learnt from its answers' budget headers."""

    def __init__(self, *, margin_fraction: float = MARGIN_FRACTION) -> None:
        self._margin_fraction = margin_fraction
        self.limit: int | None = None
        self._offset_low: float | None = None  # service clock - ours, a lower bound (Date)
        self._window_high: float | None = None  # window + that offset, an upper bound (Reset)
        self._next = -math.inf
        self._issued = 0
        self._sent: deque[float] = deque()
        self._reported: tuple[int, int, float] | None = None  # (ticket, remaining, received at)

    def window(self) -> float | None:
        """The budget's window length in seconds as learnt so far (an upper bound), or None."""
        if self._window_high is None:
            return None
        window = self._window_high - (self._offset_low or 0.0)
        return window if window > 0 else None

    def budget(self) -> int | None:
        """Requests the pacer lets through per window: the limit less a small margin."""
        if self.limit is None or self.limit <= 0:
            return None
        margin = max(1, math.ceil(self.limit * self._margin_fraction))
        return max(1, self.limit - margin)

    def interval(self) -> float:
        """Seconds between two slots (0 until a limit and a window are known)."""
        window, budget = self.window(), self.budget()
        return 0.0 if window is None or budget is None else window / budget

    def reserve(self, now: float) -> tuple[int, float]:
        """Take the next slot: return (ticket, the time the request may be sent, >= *now*)."""
        slot = max(now, self._next)
        window, budget = self.window(), self.budget()
        if window is not None and budget is not None and self.limit is not None:
            while self._sent and self._sent[0] <= slot - window:
                self._sent.popleft()
            if len(self._sent) >= budget:  # our own sends would overfill the sliding window
                slot = max(slot, self._sent[-budget] + window)
            if self._reported is not None:
                ticket, remaining, at = self._reported
                left = remaining - (self._issued - ticket - 1)
                if left <= 0:  # the service counts more than we sent: someone else uses it too
                    slot = max(slot, at + (1 - left) * window / self.limit)
            self._next = slot + window / budget
        else:
            self._next = slot
        ticket = self._issued
        self._issued += 1
        self._sent.append(slot)
        return ticket, slot

    def learn(self, budget: Budget, *, ticket: int, sent_at: float, received_at: float) -> None:
        """Take in the budget headers of the answer to *ticket*'s request."""
        if budget.limit is not None and budget.limit > 0:
            self.limit = budget.limit
        if budget.date is not None:
            low = budget.date - received_at
            self._offset_low = low if self._offset_low is None else max(self._offset_low, low)
        if budget.reset is not None and not budget.blocked:
            high = budget.reset - sent_at
            self._window_high = high if self._window_high is None else min(self._window_high, high)
        if budget.remaining is not None and (self._reported is None or ticket > self._reported[0]):
            self._reported = (ticket, budget.remaining, received_at)
