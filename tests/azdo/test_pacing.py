"""The pacer against a simulated Azure DevOps sliding window: simulated time, never real sleeps."""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import deque
from dataclasses import dataclass, field

import pytest

from patwarden.azdo.pacing import PROBE_HOLD, Budget, Pacer

LIMIT = 200
WINDOW = 30.0


@dataclass
class Service:
    """The emulator's model of the budget, on the service's clock (ours + *skew*).

    Counts every request in a sliding window, refuses past *limit* (429), and answers with
    Limit, Remaining, Reset (ceil, Unix seconds) and Date (floor: one-second resolution).
    """

    limit: int = LIMIT
    window: float = WINDOW
    skew: float = 0.0
    counted: deque[float] = field(default_factory=deque)
    accepted: list[float] = field(default_factory=list)
    throttled: int = 0
    lowest: int = LIMIT  # the lowest Remaining answered

    def answer(self, at: float) -> Budget:
        now = at + self.skew
        while self.counted and self.counted[0] <= now - self.window:
            self.counted.popleft()
        if len(self.counted) >= self.limit:
            self.throttled += 1
            reset = math.ceil(self.counted[-1] + self.window)
            return Budget(self.limit, 0, reset, math.floor(now), blocked=True)
        self.counted.append(now)
        self.accepted.append(at)
        reset = math.ceil(now + self.window)
        self.lowest = min(self.lowest, self.limit - len(self.counted))
        return Budget(self.limit, self.limit - len(self.counted), reset, math.floor(now))


def run_fleet(
    pacer: Pacer,
    service: Service,
    *,
    requests: int,
    workers: int = 8,
    latency: float = 0.05,
    jitter: float = 0.0,
    start: float = 1_800_000_000.25,
) -> float:
    """*workers* threads send *requests* in all, each awaiting its answer (discrete events).

    A request takes *latency* plus up to *jitter* seconds (seeded), and the service counts it
    at a random moment in between (queued on our side, in the network or in the service).
    """
    rng = random.Random(1)
    answers: dict[int, Budget] = {}
    at = start
    events: list[tuple[float, int, str, int, float]] = []  # (time, order, kind, ticket, sent)
    order = 0
    for _ in range(workers):
        heapq.heappush(events, (start, order, "reserve", -1, 0.0))
        order += 1
    sent = 0
    while events:
        at, _, kind, ticket, sent_at = heapq.heappop(events)
        if kind == "reserve" and sent < requests:
            reserved = pacer.reserve(at)
            if reserved is None:  # waiting for the first answer
                heapq.heappush(events, (at + 0.01, order, "reserve", -1, 0.0))
                order += 1
                continue
            sent += 1
            ticket, slot = reserved
            assert slot >= at
            took = latency + rng.random() * jitter
            heapq.heappush(events, (slot + rng.random() * took, order, "count", ticket, slot))
            heapq.heappush(events, (slot + took, order, "answer", ticket, slot))
        elif kind == "count":
            answers[ticket] = service.answer(at)
        elif kind == "answer":
            budget = answers.pop(ticket)
            pacer.learn(budget, ticket=ticket, sent_at=sent_at, received_at=at)
            heapq.heappush(events, (at + 0.002, order, "reserve", -1, 0.0))  # a little CPU
        order += 1
    return at


def rate_share(service: Service) -> float:
    times = service.accepted
    return (len(times) - 1) / (times[-1] - times[0]) / (service.limit / service.window)


def longest_gap(service: Service) -> float:
    times = service.accepted
    return max(b - a for a, b in itertools.pairwise(times))


def test_one_request_goes_alone_until_the_first_answer() -> None:
    pacer = Pacer()
    assert pacer.reserve(10.0) == (0, 10.0)
    assert pacer.reserve(10.5) is None  # the others wait for the budget to be known ...
    assert pacer.reserve(10.0 + PROBE_HOLD) == (1, 10.0 + PROBE_HOLD)  # ... not for ever


def test_without_budget_headers_nothing_is_paced() -> None:
    pacer = Pacer()
    assert pacer.reserve(10.0) == (0, 10.0)
    pacer.learn(Budget(), ticket=0, sent_at=10.0, received_at=10.1)
    assert [pacer.reserve(10.2) for _ in range(3)] == [(1, 10.2), (2, 10.2), (3, 10.2)]
    assert pacer.interval() == 0.0


def test_the_window_is_learnt_as_an_upper_bound_from_reset_and_date() -> None:
    pacer = Pacer()
    reserved = pacer.reserve(100.0)
    assert reserved is not None
    ticket, slot = reserved
    # Service clock 1000.3 s ahead: Date floors it, Reset ceils it.
    pacer.learn(
        Budget(limit=200, remaining=199, reset=1131.0, date=1100.0),
        ticket=ticket,
        sent_at=slot,
        received_at=100.05,
    )
    window = pacer.window()
    assert window is not None
    assert 30.0 <= window <= 31.1  # one answer: up to the headers' 1-s resolution + latency
    assert pacer.interval() == pytest.approx(window / 198)  # 1 % kept back: 2 of 200


@pytest.mark.parametrize("skew", [0.0, -5.0, -3.0, -1.0, 1.0, 5.0, 3600.0])
def test_a_fleet_runs_at_the_budget_without_429_or_stall(skew: float) -> None:
    """1,000 requests against 200 per 30 s: no 429, no pause longer than a few intervals and
    at least 95 % of the budget's rate, whatever the offset between the two clocks."""
    service = Service(skew=skew)
    run_fleet(Pacer(), service, requests=1000)
    assert service.throttled == 0
    assert len(service.accepted) == 1000
    assert longest_gap(service) < 5 * WINDOW / LIMIT
    assert rate_share(service) >= 0.95


def test_requests_counted_late_do_not_overfill_the_window() -> None:
    """Answers take 50-550 ms and the service counts each somewhere in that time: an old request
    counted late stays in its window longer, and the pacer allows for it."""
    service = Service()
    run_fleet(Pacer(), service, requests=1000, jitter=0.5)
    assert service.throttled == 0
    assert service.lowest >= 1  # never at the edge: counted by send time it reaches 0
    assert rate_share(service) >= 0.95


def test_the_services_count_holds_back_requests_someone_else_spent() -> None:
    """Another process uses the identity: the service's Remaining says so and the pacer waits."""
    service = Service()
    for i in range(150):  # someone else's burst, a second before ours
        service.answer(1_800_000_000.0 - 1 + i / 1000)
    run_fleet(Pacer(), service, requests=300)
    assert len(service.accepted) == 450
    assert service.throttled == 0


def test_a_429s_reset_does_not_shrink_the_window() -> None:
    """A blocked answer's Reset describes an older request: it must not teach a shorter window."""
    pacer = Pacer()
    pacer.learn(Budget(200, 100, 30.0, 0.0), ticket=0, sent_at=0.0, received_at=0.01)
    pacer.learn(Budget(200, 0, 30.0, 20.0, blocked=True), ticket=1, sent_at=20.0, received_at=20.0)
    window = pacer.window()
    assert window is not None
    assert window >= 29.0


def test_a_stepped_service_clock_restarts_the_bounds() -> None:
    """The service's clock jumps an hour ahead mid-run (the emulator's PUT /_admin/clock): the
    pacer keeps pacing at the same rate instead of learning a nonsense window."""
    service, pacer = Service(), Pacer()
    end = run_fleet(pacer, service, requests=400)
    interval = pacer.interval()
    service.skew = 3600.0
    run_fleet(pacer, service, requests=400, start=end)
    assert service.throttled == 0
    assert len(service.accepted) == 800
    assert pacer.interval() == pytest.approx(interval, rel=0.05)
    # Re-learnt from one answer the window is up to a second longer (1-s header resolution) for
    # a moment: one short hold, far from a whole-window stall.
    assert longest_gap(service) < 2.0


@pytest.mark.parametrize("workers", [64, 256])
def test_many_workers_share_one_budget(workers: int) -> None:
    """More workers than the window holds reserve slots far ahead: the budget is still used,
    never exceeded (patwarden's concurrency goes up to 256)."""
    service = Service()
    run_fleet(Pacer(), service, requests=1000, workers=workers, jitter=0.2)
    assert service.throttled == 0
    assert rate_share(service) >= 0.95
    assert longest_gap(service) < 5 * WINDOW / LIMIT


def test_reset_and_date_on_different_clocks_stop_the_pacing_not_the_run() -> None:
    """A Reset a day ahead of the Date it came with is no five-minute window: no pacing then,
    rather than one request a day (Retry-After and 429 still pause the identity)."""
    pacer = Pacer()
    day = 86_400.0
    pacer.learn(Budget(200, 199, 1000.0 + day + 30, 1000.0), ticket=0, sent_at=0.0, received_at=0.0)
    assert pacer.window() is None
    assert pacer.interval() == 0.0
    assert [pacer.reserve(1.0) for _ in range(3)] == [(0, 1.0), (1, 1.0), (2, 1.0)]
