from __future__ import annotations

import email.utils
import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime

import httpx
import pytest

from patwarden.azdo.errors import AzdoRateLimited
from patwarden.azdo.ratelimit import (
    CLOCK_TOLERANCE,
    RateLimiter,
    RateLimiterRegistry,
    advised_wait,
)

from .conftest import FakeClock

NOW = 1_800_000_000.0


DATE_NOW = parsedate_to_datetime("Fri, 15 Jan 2027 08:00:00 GMT").timestamp()


@pytest.mark.parametrize(
    ("headers", "now", "expected"),
    [
        ({}, NOW, None),
        ({"Retry-After": "30"}, NOW, 30.0),
        ({"Retry-After": "0"}, NOW, None),
        ({"Retry-After": "soon"}, NOW, None),
        ({"Retry-After": "Fri, 15 Jan 2027 08:00:10 GMT"}, DATE_NOW, 10.0),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(NOW + 42)}, NOW, 42.0),
        ({"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": str(NOW + 42)}, NOW, None),
        ({"X-RateLimit-Remaining": "0"}, NOW, None),
        ({"X-RateLimit-Delay": "1.250"}, NOW, 1.25),
        ({"X-RateLimit-Delay": "nan"}, NOW, None),
        (
            {
                "Retry-After": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(NOW + 60),
                "X-RateLimit-Delay": "2",
            },
            NOW,
            5.0,  # Retry-After says when to resume; Reset (all usage gone) would over-wait
        ),
        # With a Limit the pacer spreads the requests: Remaining 0 alone pauses nothing.
        (
            {
                "X-RateLimit-Limit": "200",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(NOW + 60),
            },
            NOW,
            None,
        ),
        # Reset and an HTTP-date Retry-After are read against the service's Date, not our clock.
        (
            {
                "Date": "Fri, 15 Jan 2027 08:00:00 GMT",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(DATE_NOW + 300),
            },
            DATE_NOW - 3,
            300.0,
        ),
        (
            {
                "Date": "Fri, 15 Jan 2027 08:00:00 GMT",
                "Retry-After": "Fri, 15 Jan 2027 08:00:10 GMT",
            },
            DATE_NOW + 4,
            10.0,
        ),
    ],
)
def test_advised_wait(headers: dict[str, str], now: float, expected: float | None) -> None:
    assert advised_wait(httpx.Headers(headers), now=now) == expected


def test_wait_sleeps_until_the_advised_time_and_never_shortens() -> None:
    clock = FakeClock(NOW)
    limiter = RateLimiter(clock=clock.time, sleep=clock.sleep)
    assert limiter.wait() == 0.0
    assert clock.sleeps == []
    limiter.pause_for(10)
    limiter.pause_until(NOW + 3)  # an earlier end must not cut the pause short
    assert limiter.remaining() == 10
    assert limiter.wait() == 10
    assert clock.time() == NOW + 10
    assert limiter.remaining() == 0


def test_observe_applies_headers() -> None:
    clock = FakeClock(NOW)
    limiter = RateLimiter(clock=clock.time, sleep=clock.sleep)
    assert limiter.observe(httpx.Headers({"Retry-After": "7"})) == 7
    assert limiter.remaining() == 7


def test_wait_longer_than_max_fails_fast_without_sleeping() -> None:
    clock = FakeClock(NOW)
    limiter = RateLimiter(name="rotator", clock=clock.time, sleep=clock.sleep)
    limiter.pause_for(3600)
    with pytest.raises(AzdoRateLimited) as info:
        limiter.wait(max_wait=300)
    assert clock.sleeps == []
    assert info.value.retry_after == 3600
    assert "'rotator'" in str(info.value)
    assert "3600 s" in str(info.value)


def test_every_thread_of_the_identity_waits_for_the_shared_pause() -> None:
    clock = FakeClock(NOW)
    limiter = RateLimiter(clock=clock.time, sleep=clock.sleep)
    limiter.pause_until(NOW + 20)
    release_times: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        limiter.wait()
        with lock:
            release_times.append(clock.time())

    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(8):
            pool.submit(worker)
    assert len(release_times) == 8
    assert all(t >= NOW + 20 for t in release_times)


def test_registry_shares_one_limiter_per_identity() -> None:
    clock = FakeClock(NOW)
    registry = RateLimiterRegistry(clock=clock.time, sleep=clock.sleep)
    rotator = registry.get("rotator")
    assert registry.get("rotator") is rotator
    assert registry.get("writer") is not rotator
    rotator.pause_for(5)
    assert registry.get("writer").remaining() == 0
    assert registry.get("rotator").remaining() == 5


def test_waits_are_counted_for_the_service_metrics() -> None:
    clock = FakeClock(NOW)
    registry = RateLimiterRegistry(clock=clock.time, sleep=clock.sleep)
    rotator = registry.get("rotator")
    rotator.wait()
    assert rotator.waits == 0  # nothing to wait for
    rotator.pause_for(2)
    rotator.wait()
    assert rotator.waits == 1
    assert registry.limiters() == [rotator]


@pytest.mark.parametrize("behind", [1.0, 5.0])
def test_a_pause_a_little_over_the_limit_is_tolerated_but_a_long_one_still_fails(
    behind: float,
) -> None:
    """Without a Date header Reset is read against our clock: a few seconds of skew are
    tolerated (CLOCK_TOLERANCE), a pause well beyond the limit still fails fast."""
    clock = FakeClock(NOW)
    limiter = RateLimiter(clock=clock.time, sleep=clock.sleep)
    reset = NOW + behind + 300  # 300 s on the service's clock, which is ahead of ours
    limiter.observe(httpx.Headers({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}))
    assert limiter.wait(max_wait=300) == 300 + behind
    limiter.pause_for(300 + CLOCK_TOLERANCE + 1)
    with pytest.raises(AzdoRateLimited):
        limiter.wait(max_wait=300)


def test_acquire_paces_every_thread_of_the_identity() -> None:
    """After one answer with the budget headers, requests go an even interval apart."""
    clock = FakeClock(NOW)
    limiter = RateLimiter(clock=clock.time, sleep=clock.sleep)
    first = limiter.acquire()
    date = email.utils.formatdate(NOW, usegmt=True)
    budget = {"X-RateLimit-Limit": "200", "X-RateLimit-Remaining": "199", "Date": date}
    limiter.observe(
        httpx.Headers({**budget, "X-RateLimit-Reset": str(int(NOW) + 30)}), ticket=first, status=200
    )
    assert limiter.interval() == pytest.approx(30 / 198, abs=0.01)
    sent = [limiter.acquire().sent_at for _ in range(20)]
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert all(gap == pytest.approx(limiter.interval()) for gap in gaps)
    assert limiter.paced >= 19
    assert limiter.waits == 0  # pacing is not a pause the service asked for
