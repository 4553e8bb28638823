"""Is it due? Issued validTo, deterministic jitter, clamping and loop refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patwarden.domain.models import IssuedPat, TokenSpec
from patwarden.domain.schedule import (
    ScheduleError,
    check_spec,
    decide,
    is_clamped,
    jitter_offset,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def _spec(**changes: object) -> TokenSpec:
    values: dict[str, object] = {
        "name": "flux-git",
        "organization": "contoso",
        "scopes": ("vso.code",),
        "lifetime": 30 * DAY,
        "rotate_before": 7 * DAY,
        "revoke_after": DAY,
    }
    values.update(changes)
    return TokenSpec(**values)  # type: ignore[arg-type]


def _issued(lifetime: timedelta = 30 * DAY) -> IssuedPat:
    return IssuedPat(authorization_id="a", display_name="d", valid_from=T0, valid_to=T0 + lifetime)


def test_never_issued_is_due_now() -> None:
    decision = decide(spec=_spec(), issued=None, now=T0)
    assert decision.is_due
    assert decision.reason == "no PAT issued yet"


@pytest.mark.parametrize(
    ("elapsed", "due"),
    [
        (22 * DAY, False),
        (23 * DAY - timedelta(seconds=1), False),
        (23 * DAY, True),
        (40 * DAY, True),
    ],
)
def test_due_at_issued_valid_to_minus_rotate_before(elapsed: timedelta, due: bool) -> None:
    decision = decide(spec=_spec(), issued=_issued(), now=T0 + elapsed)
    assert decision.is_due is due
    assert decision.due_at == T0 + 23 * DAY


def test_schedule_follows_the_issued_not_the_requested_valid_to() -> None:
    issued = _issued(lifetime=20 * DAY)  # a policy clamped 30d to 20d
    decision = decide(spec=_spec(), issued=issued, now=T0 + 13 * DAY)
    assert decision.is_due
    assert decision.is_clamped
    assert decision.effective_lifetime == 20 * DAY
    assert "clamped" in decision.reason


def test_clamping_that_would_loop_is_refused_with_a_reason() -> None:
    decision = decide(spec=_spec(), issued=_issued(lifetime=5 * DAY), now=T0 + 4 * DAY)
    assert not decision.is_due
    assert decision.would_loop
    assert decision.problem is not None
    assert "Lower rotate_before" in decision.problem
    assert "lifespan policy" in decision.problem


def test_clamp_to_exactly_rotate_before_is_a_loop_despite_rounding() -> None:
    # The service clamps 30d to 7d = rotate_before; the issued PAT is a few ms longer than 7d.
    issued = _issued(lifetime=7 * DAY + timedelta(milliseconds=3))
    decision = decide(spec=_spec(), issued=issued, now=T0 + timedelta(hours=1))
    assert decision.would_loop
    assert not decision.is_due


def test_rounding_is_not_clamping() -> None:
    issued = IssuedPat(
        authorization_id="a",
        display_name="d",
        valid_from=T0 + timedelta(seconds=1),
        valid_to=T0 + 30 * DAY - timedelta(milliseconds=3),
    )
    assert not is_clamped(issued=issued, requested_lifetime=30 * DAY)
    assert is_clamped(issued=_issued(29 * DAY), requested_lifetime=30 * DAY)


def test_jitter_is_deterministic_bounded_and_spreads_names() -> None:
    jitter = timedelta(hours=6)
    offsets = {jitter_offset(token_name=f"token-{n}", jitter=jitter) for n in range(50)}
    assert all(timedelta(0) <= o <= jitter for o in offsets)
    assert len(offsets) > 40
    assert jitter_offset(token_name="a", jitter=jitter) == jitter_offset(
        token_name="a", jitter=jitter
    )
    assert jitter_offset(token_name="a", jitter=timedelta(0)) == timedelta(0)
    # with a jitter of one second, both ends of [0, 1 s] are used and nothing beyond
    small = {jitter_offset(token_name=f"t{n}", jitter=timedelta(seconds=1)) for n in range(50)}
    assert small == {timedelta(0), timedelta(seconds=1)}
    # the same in every version: an upgrade never moves a token's schedule
    assert jitter_offset(token_name="flux-git", jitter=jitter) == timedelta(hours=5, seconds=604)
    assert jitter_offset(token_name="npm-feed", jitter=2 * DAY) == timedelta(hours=1, seconds=1266)


@given(name=st.text(min_size=1, max_size=20), hours=st.integers(0, 48))
def test_jitter_only_moves_the_due_time_earlier(name: str, hours: int) -> None:
    spec = _spec(name=name, jitter=timedelta(hours=hours))
    decision = decide(spec=spec, issued=_issued(), now=T0)
    assert decision.due_at is not None
    assert T0 + 23 * DAY - timedelta(hours=hours) <= decision.due_at <= T0 + 23 * DAY


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rotate_before": 30 * DAY}, "not shorter than lifetime"),
        ({"rotate_before": 29 * DAY, "jitter": 2 * DAY}, "not shorter than lifetime"),
        ({"lifetime": timedelta(0)}, "lifetime must be positive"),
        ({"rotate_before": timedelta(0)}, "rotate_before must be positive"),
        ({"jitter": -DAY}, "jitter must not be negative"),
        ({"revoke_after": -DAY}, "revoke_after must not be negative"),
    ],
)
def test_specs_that_cannot_work_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ScheduleError, match=message) as info:
        check_spec(_spec(**changes))
    assert "tokens.flux-git" in info.value.message
    assert info.value.hint


def test_a_sane_spec_passes() -> None:
    check_spec(_spec(jitter=timedelta(hours=12)))


def test_names_that_cannot_be_a_marker_are_refused() -> None:
    with pytest.raises(ScheduleError, match="display name"):
        check_spec(_spec(name="has:colon"))
