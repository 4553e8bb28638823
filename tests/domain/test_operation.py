"""The journal record of one rotation: the names it is stored under and what each step means.

Step, sink status and outcome names are written to every state file and journal: renaming one
would make existing states unreadable, so they are pinned here one by one.
"""

from __future__ import annotations

from patwarden.domain.operation import HOLDS_NEW, Outcome, SinkStatus, Step


def test_the_stored_names_of_steps_sink_statuses_and_outcomes() -> None:
    assert [s.value for s in Step] == [
        "planned",
        "creating",
        "created",
        "distributing",
        "distributed",
        "verifying",
        "verified",
        "promoted",
        "revoke_pending",
        "revoked",
        "done",
        "rolling_back",
        "failed",
    ]
    assert [s.value for s in SinkStatus] == [
        "pending",
        "writing",
        "written",
        "confirmed",
        "restored",
        "stuck",
    ]
    assert [o.value for o in Outcome] == ["rotated", "rolled_back", "stranded", "failed"]


def test_only_done_and_failed_are_terminal_and_the_revocation_is_the_tail() -> None:
    assert {s for s in Step if s.is_terminal} == {Step.DONE, Step.FAILED}
    assert {s for s in Step if s.is_tail} == {Step.REVOKE_PENDING, Step.REVOKED}


def test_the_sinks_that_may_hold_the_new_pat() -> None:
    held = {SinkStatus.WRITING, SinkStatus.WRITTEN, SinkStatus.CONFIRMED, SinkStatus.STUCK}
    assert set(HOLDS_NEW) == held
    assert not {SinkStatus.PENDING, SinkStatus.RESTORED} & set(HOLDS_NEW)
