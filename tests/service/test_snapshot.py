"""A token's view: "expiring" means within the warning *and* not rotated in time — a token that
is simply not due yet is fine, one whose rotation failed or is long overdue is not."""

from __future__ import annotations

from datetime import timedelta

from patwarden.domain.models import IssuedPat, ManagedTokenState
from patwarden.domain.schedule import ScheduleDecision
from patwarden.rotation.outcomes import OutcomeKind, TokenOutcome, TokenPlan
from patwarden.service.snapshot import TokenView, token_view
from tests.support.clock import now

WARNING = timedelta(days=7)


def view(*, expires_in: timedelta, due_in: timedelta, last: OutcomeKind | None) -> TokenView:
    at = now()
    pat = IssuedPat(
        authorization_id="a1",
        display_name="patwarden:t",
        valid_from=at - timedelta(days=20),
        valid_to=at + expires_in,
    )
    state = ManagedTokenState(token_name="t", organization="contoso", current=pat)
    decision = ScheduleDecision(is_due=due_in <= timedelta(0), due_at=at + due_in, reason="r")
    plan = TokenPlan(token_name="t", decision=decision, state=state)
    outcome = None if last is None else TokenOutcome(token_name="t", kind=last, reason="why")
    return token_view(
        plan=plan,
        organization="contoso",
        state=state,
        last=outcome,
        now=at,
        expiry_warning=WARNING,
    )


def test_not_due_yet_inside_the_warning_is_not_expiring() -> None:
    found = view(expires_in=timedelta(days=6), due_in=timedelta(hours=1), last=OutcomeKind.NOT_DUE)
    assert not found.expiring
    assert found.status == "ok"


def test_a_failed_rotation_inside_the_warning_is_expiring() -> None:
    found = view(expires_in=timedelta(days=6), due_in=-timedelta(days=1), last=OutcomeKind.FAILED)
    assert found.expiring
    assert found.status == "failed"  # the failure is the headline; expiring is its consequence


def test_long_overdue_inside_the_warning_is_expiring() -> None:
    overdue = view(expires_in=timedelta(days=6), due_in=-timedelta(hours=1), last=None)
    assert overdue.expiring
    assert overdue.status == "expiring"
    just_due = view(expires_in=timedelta(days=6), due_in=-timedelta(seconds=5), last=None)
    assert not just_due.expiring


def test_outside_the_warning_nothing_is_expiring() -> None:
    found = view(expires_in=timedelta(days=9), due_in=-timedelta(days=1), last=OutcomeKind.FAILED)
    assert not found.expiring
