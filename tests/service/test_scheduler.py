"""The service's backoff: doubling from backoff_min up to backoff_max, cleared by a success."""

from __future__ import annotations

from datetime import datetime, timedelta

from patwarden.service.scheduler import Backoff, next_due
from patwarden.service.snapshot import TokenView
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


def _token(name: str, due: datetime | None) -> TokenView:
    return TokenView(name=name, organization="contoso", status="ok", next_rotation=due)


def test_a_token_that_came_due_during_the_last_tick_runs_at_once() -> None:
    """A long pass must not leave a token that came due meanwhile waiting for the next tick."""
    tick = now()
    current = tick + timedelta(seconds=7)  # the tick took 7 s; alpha came due 5 s into it
    tokens = [_token("alpha", tick + timedelta(seconds=5)), _token("bravo", None)]
    backoff = Backoff(low=timedelta(seconds=2), high=timedelta(seconds=4))

    assert next_due(tokens, backoff, now=current, tick_at=tick) == current


def test_a_due_time_the_last_tick_saw_does_not_make_the_loop_spin() -> None:
    """Due before the last tick began: that tick tried it (perhaps skipped it); wait as usual."""
    tick = now()
    current = tick + timedelta(seconds=1)
    later = tick + timedelta(seconds=20)
    tokens = [_token("alpha", tick - timedelta(seconds=3)), _token("bravo", later)]
    backoff = Backoff(low=timedelta(seconds=2), high=timedelta(seconds=4))

    assert next_due(tokens, backoff, now=current, tick_at=tick) == later
    assert next_due(tokens[:1], backoff, now=current, tick_at=tick) == current + timedelta(
        seconds=30
    )


def test_a_backoff_end_is_a_wake_up_time() -> None:
    tick = now()
    backoff = Backoff(low=timedelta(seconds=2), high=timedelta(seconds=4))
    until = backoff.failed("alpha", tick)
    tokens = [_token("alpha", tick - timedelta(seconds=1))]

    assert next_due(tokens, backoff, now=tick + timedelta(seconds=1), tick_at=tick) == until
