"""The service's backoff: doubling from backoff_min up to backoff_max, cleared by a success."""

from __future__ import annotations

from datetime import timedelta

from patwarden.service.scheduler import Backoff
from tests.support.clock import now


def test_backoff_doubles_up_to_the_maximum_and_resets() -> None:
    at = now()
    backoff = Backoff(low=timedelta(minutes=1), high=timedelta(minutes=5))
    waits = [backoff.failed("t", at) - at for _ in range(5)]
    assert waits == [timedelta(minutes=m) for m in (1, 2, 4, 5, 5)]
    assert backoff.blocked("t", at + timedelta(minutes=4))
    assert not backoff.blocked("t", at + timedelta(minutes=5))
    assert not backoff.blocked("other", at)
    backoff.succeeded("t")
    assert not backoff.blocked("t", at)
    assert backoff.failed("t", at) - at == timedelta(minutes=1)
