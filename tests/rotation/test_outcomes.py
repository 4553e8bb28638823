"""What a run reports: the outcome and finding names of ``rotate -o json`` and when a run is ok.

The names are an interface (docs/commands.md, docs/rotation.md; scripts and the audit log read
them), so they are pinned here one by one.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from patwarden.errors import SinkError
from patwarden.rotation.outcomes import (
    Finding,
    FindingKind,
    OutcomeKind,
    RunReport,
    TokenOutcome,
)
from tests.rotation.harness import Harness

DAY = timedelta(days=1)


def _document(report: RunReport) -> Any:
    """The run's ``-o json`` document, as a reader of the JSON gets it."""
    return json.loads(json.dumps(report.to_json()))


@pytest.fixture
def world(tmp_path: Path) -> Harness:
    return Harness(path=tmp_path / "state.db")


def test_outcome_and_finding_names_are_the_documented_ones() -> None:
    assert {k.value for k in OutcomeKind} == {
        "rotated",
        "not_due",
        "would_rotate",
        "failed",
        "rolled_back",
        "skipped",
    }
    assert {k.value for k in FindingKind} == {
        "resumed",
        "revoked_previous",
        "revoke_deferred",
        "orphan_revoked",
        "orphan_found",
        "drift",
        "state_missing",
        "stranded_revoked",
        "current_lost",
        "preflight_failed",
    }


def test_the_json_document_of_a_rotation_and_a_run_with_nothing_due(world: Harness) -> None:
    rotated = _document(world.run())
    world.advance(DAY)
    not_due = _document(world.run())

    [token] = rotated["tokens"]
    assert rotated["ok"] is True
    assert token["outcome"] == "rotated"
    assert token["token"] == "flux-git"
    assert token["new_authorization_id"] == world.current_id()
    assert token["converged"] is True
    assert set(token) == {
        "token",
        "outcome",
        "reason",
        "operation_id",
        "current_authorization_id",
        "new_authorization_id",
        "replaced_authorization_id",
        "converged",
        "problems",
        "due_at",
        "sinks",
        "notes",
    }
    assert token["operation_id"] == world.store.load_token("flux-git").last_operation_id
    assert token["notes"] == []
    current, confirmed = world.current_id(), "holds the new PAT (confirmed)"
    assert token["sinks"] == [
        {"sink": "fake kv", "authorization_id": current, "status": confirmed},
        {"sink": "fake group", "authorization_id": current, "status": confirmed},
    ]
    [later] = not_due["tokens"]
    assert later["outcome"] == "not_due"
    assert later["current_authorization_id"] == world.current_id()
    assert later["due_at"] == (world.clock.now() + 22 * DAY).isoformat()


def test_a_rolled_back_run_is_not_ok_and_its_findings_are_listed(world: Harness) -> None:
    world.run()
    world.advance(23 * DAY)
    world.sinks[1].faults.fail("write", SinkError("denied"))

    document = _document(world.run())

    [token] = document["tokens"]
    assert document["ok"] is False
    assert token["outcome"] == "rolled_back"
    assert "denied" in token["reason"]


@pytest.mark.parametrize("kind", list(OutcomeKind))
def test_only_failed_and_rolled_back_outcomes_need_attention(kind: OutcomeKind) -> None:
    outcome = TokenOutcome(token_name="t", kind=kind, reason="r")
    failing = kind in (OutcomeKind.FAILED, OutcomeKind.ROLLED_BACK)
    assert kind.is_ok is not failing
    assert outcome.needs_attention is failing
    assert RunReport(outcomes=(outcome,)).ok is not failing


def test_an_outcome_off_its_desired_state_needs_attention_whatever_its_kind() -> None:
    off = TokenOutcome(token_name="t", kind=OutcomeKind.NOT_DUE, reason="r", problems=("x",))
    fine = TokenOutcome(token_name="u", kind=OutcomeKind.NOT_DUE, reason="r")
    assert not off.converged
    assert off.needs_attention
    assert RunReport(outcomes=(fine, off)).ok is False
    assert RunReport(outcomes=(fine,)).ok is True
    assert RunReport(outcomes=()).ok is True
    finding = Finding(kind=FindingKind.DRIFT, token_name="t", detail="d", sink="kv")
    document = _document(RunReport(outcomes=(off,), findings=(finding,)))
    assert document["findings"] == [
        {"kind": "drift", "token": "t", "detail": "d", "authorization_id": None, "sink": "kv"}
    ]
    assert document["tokens"][0]["problems"] == ["x"]
