"""Conditions from a snapshot, and their de-duplication: one message when a condition starts, a
reminder per interval, one when it resolves, a new one when a re-login warning escalates; the
open conditions survive a restart."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from patwarden.service.alerts import AlertBook, conditions
from patwarden.service.snapshot import IdentityView, Snapshot, TokenView
from tests.support.clock import now

WARNINGS = (timedelta(days=14), timedelta(days=7), timedelta(days=1))


def token(name: str, **fields: object) -> TokenView:
    return TokenView(name=name, organization="contoso", **fields)  # type: ignore[arg-type]


def snapshot(*tokens: TokenView, identities: tuple[IdentityView, ...] = ()) -> Snapshot:
    return Snapshot(at=now(), role="leader", tokens=tokens, identities=identities)


def kinds(snap: Snapshot, **kw: object) -> set[str]:
    return {c.key for c in conditions(snap, now=now(), relogin_warnings=WARNINGS)}


def test_each_token_problem_is_a_condition() -> None:
    at = now()
    snap = snapshot(
        token("ok", status="ok", valid_to=at + timedelta(days=20)),
        token("broken", status="failed", last_outcome="failed", problem="last rotation failed"),
        token("undone", status="failed", last_outcome="rolled_back"),
        token("stuck", status="stranded", problem="sinks hold another PAT"),
        token("drifting", status="drift", drift=("kv: the sink is empty",)),
        token("late", status="expiring", expiring=True, valid_to=at + timedelta(hours=3)),
        token("gone", status="failed", valid_to=at - timedelta(minutes=1)),
    )
    assert kinds(snap) == {
        "rotation_failed:broken",
        "rotation_rolled_back:undone",
        "stranded:stuck",
        "drift:drifting",
        "expiring:late",
        "rotation_failed:gone",
        "expiring:gone",  # already expired counts too
    }


def test_relogin_warnings_step_down_and_relogin_now() -> None:
    at = now()
    far = IdentityView(name="far", kind="user", relogin_deadline=at + timedelta(days=30))
    soon = IdentityView(name="soon", kind="user", relogin_deadline=at + timedelta(days=6))
    dead = IdentityView(name="dead", kind="user", ok=False, relogin_now=True, detail="revoked")
    found = conditions(snapshot(identities=(far, soon, dead)), now=at, relogin_warnings=WARNINGS)
    assert {(c.key, c.level) for c in found} == {
        ("relogin_due:soon", "7d"),
        ("relogin_now:dead", None),
    }


def test_one_message_per_condition_reminders_and_resolution(tmp_path: Path) -> None:
    at = now()
    book = AlertBook(tmp_path / "alerts.json", reminder_interval=timedelta(hours=6))
    failing = snapshot(token("t", status="failed", last_outcome="failed"))
    found = conditions(failing, now=at, relogin_warnings=WARNINGS)
    assert [n.phase for n in book.update(found, now=at)] == ["started"]
    assert book.update(found, now=at + timedelta(minutes=15)) == []
    # A restarted service (even after SIGKILL) remembers what it already said.
    again = AlertBook(tmp_path / "alerts.json", reminder_interval=timedelta(hours=6))
    assert again.update(found, now=at + timedelta(hours=1)) == []
    assert [n.phase for n in again.update(found, now=at + timedelta(hours=6))] == ["reminder"]
    (resolved,) = again.update([], now=at + timedelta(hours=7))
    assert resolved.phase == "resolved"
    assert resolved.condition.key == "rotation_failed:t"
    assert resolved.started_at == at
    assert again.update([], now=at + timedelta(hours=8)) == []
    assert (tmp_path / "alerts.json").stat().st_mode & 0o777 == 0o600


def test_a_lower_relogin_threshold_alerts_again(tmp_path: Path) -> None:
    at = now()
    book = AlertBook(tmp_path / "alerts.json", reminder_interval=timedelta(days=30))
    for days_left, expected in ((13, ["started"]), (12, []), (6, ["started"]), (5, [])):
        identity = IdentityView(
            name="rotator", kind="user", relogin_deadline=at + timedelta(days=days_left)
        )
        found = conditions(snapshot(identities=(identity,)), now=at, relogin_warnings=WARNINGS)
        assert [n.phase for n in book.update(found, now=at)] == expected, days_left
