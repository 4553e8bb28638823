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
  round-trip time (``Date`` and ``Reset`` have one-second resolution). The bounds are taken over
  the last :data:`SAMPLES` answers, so a stepped clock or a changed window ages out (a service
  clock seen jumping ahead by more than :data:`CLOCK_STEP` restarts them at once);
- it mirrors the service's sliding window with its own requests: never more than
  ``limit - margin`` in any window, each counted until a window after its *answer* came (the
  service counted it somewhere between our send and its answer, so a request that waited in a
  queue on either side is not taken for gone too early);
- it trusts the service's count: what an answer says was used beyond our own sends in the window
  (another process using the identity) is taken off the budget, and the rest is spread over the
  window, until answers show that usage gone;
- until the first answer, one request goes alone (for at most :data:`PROBE_HOLD` seconds): the
  workers of a process do not burst before the budget is known.

Not thread-safe: :class:`patwarden.azdo.ratelimit.RateLimiter` calls it under its lock. Times are
seconds on the caller's clock; nothing here reads a clock or sleeps.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

MARGIN_FRACTION = 0.01  # of the limit (at least 1) kept unused: room for network jitter
PROBE_HOLD = 1.0  # seconds the other requests wait for the first answer (it may never come)
SAMPLES = 128  # answers the window's bounds are taken over
LOG_CAP = 4096  # requests remembered at most (while no window is known, e.g. no headers)
CLOCK_STEP = 5.0  # seconds: a larger jump of the clocks' offset restarts the bounds
MAX_WINDOW = 3600.0  # seconds: a longer "window" means Reset and Date disagree; no pacing then


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
        self._offsets: deque[float] = deque(maxlen=SAMPLES)  # Date - received: <= the offset
        self._windows: deque[float] = deque(maxlen=SAMPLES)  # Reset - sent: >= window + offset
        self._window: float | None = None
        self._next = -math.inf
        self._issued = 0
        self._slots: deque[float] = deque()  # our requests' send times, two windows, in order
        self._counted: deque[float] = deque()  # for each: its answer's time, until then its slot
        self._first_ticket = 0  # the ticket of _slots[0]
        self._first: float | None = None  # when the first request went
        self._answered = False
        self._foreign = 0  # requests the service counted in its window that we did not send

    def window(self) -> float | None:
        """The budget's window length in seconds as learnt so far (an upper bound), or None."""
        return self._window

    def budget(self) -> int | None:
        """Requests the pacer lets through per window: the limit less a small margin."""
        if self.limit is None or self.limit <= 0:
            return None
        margin = max(1, math.ceil(self.limit * self._margin_fraction))
        return max(1, self.limit - margin)

    def ours(self) -> int | None:
        """Requests per window left to us: the budget less what others spent (None: unknown)."""
        budget = self.budget()
        return None if budget is None else max(1, budget - self._foreign)

    def interval(self) -> float:
        """Seconds between two slots (0 until a limit and a window are known)."""
        window, ours = self.window(), self.ours()
        return 0.0 if window is None or ours is None else window / ours

    def reserve(self, now: float) -> tuple[int, float] | None:
        """Take the next slot: return (ticket, the time the request may be sent, >= *now*), or
        None while the first request's answer is awaited (ask again a little later)."""
        if not self._answered and self._first is not None and now < self._first + PROBE_HOLD:
            return None
        slot = max(now, self._next)
        window, ours = self.window(), self.ours()
        if window is not None and ours is not None:
            self._forget(lambda first: first <= now - 2 * window)  # answers may come late
            inside = sorted(at for at in self._counted if at > slot - window)
            if len(inside) >= ours:  # our own requests would overfill the sliding window
                slot = max(slot, inside[len(inside) - ours] + window)
            self._next = slot + window / ours
        else:
            self._next = slot
        self._forget(lambda first: len(self._slots) >= LOG_CAP)
        if self._first is None:
            self._first = slot
        ticket = self._issued
        self._issued += 1
        self._slots.append(slot)
        self._counted.append(slot)
        return ticket, slot

    def _forget(self, old: Callable[[float], bool]) -> None:
        while self._slots and old(self._slots[0]):
            self._slots.popleft()
            self._counted.popleft()
            self._first_ticket += 1

    def learn(self, budget: Budget, *, ticket: int, sent_at: float, received_at: float) -> None:
        """Take in the budget headers of the answer to *ticket*'s request."""
        self._answered = True
        if 0 <= (index := ticket - self._first_ticket) < len(self._counted):
            self._counted[index] = max(self._counted[index], received_at)
        if budget.limit is not None and budget.limit > 0:
            self.limit = budget.limit
        if budget.date is not None:
            offset = budget.date - received_at
            if self._offsets and offset > max(self._offsets) + CLOCK_STEP:  # a clock was stepped
                self._offsets.clear()
                self._windows.clear()
            self._offsets.append(offset)
        if budget.reset is not None and not budget.blocked:
            self._windows.append(budget.reset - sent_at)
        if self._windows:
            bound = min(self._windows) - (max(self._offsets) if self._offsets else 0.0)
            self._window = bound if 0 < bound <= MAX_WINDOW else None
        window = self._window
        if budget.remaining is not None and self.limit is not None and window is not None:
            # What the service counted in its window with this request, less our own sends.
            used = self.limit - budget.remaining
            mine = bisect_right(self._slots, sent_at) - bisect_right(self._slots, sent_at - window)
            self._foreign = max(0, used - mine)
