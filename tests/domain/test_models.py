"""Domain values: immutability, redaction, and the token state helpers."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from patwarden.domain.models import (
    AuditRecord,
    CreatedPat,
    IssuedPat,
    ManagedTokenState,
    SinkRecord,
)
from patwarden.secret import Secret

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _pat(pat_id: str) -> IssuedPat:
    return IssuedPat(
        authorization_id=pat_id, display_name="d", valid_from=T0, valid_to=T0 + timedelta(days=9)
    )


def test_values_are_frozen() -> None:
    pat = _pat("a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        pat.authorization_id = "b"  # type: ignore[misc]
    assert pat.lifetime == timedelta(days=9)


def test_created_pat_never_shows_its_value() -> None:
    created = CreatedPat(pat=_pat("a"), secret=Secret("very-secret-value"))
    assert "very-secret-value" not in repr(created)
    assert "very-secret-value" not in str(created)


def test_state_tracks_which_sink_serves_which_pat() -> None:
    state = ManagedTokenState(
        token_name="t", organization="o", current=_pat("new"), previous=_pat("old")
    )
    state = state.with_sink(SinkRecord(sink="kv", authorization_id="old", ref="1"))
    state = state.with_sink(SinkRecord(sink="kv", authorization_id="new", ref="2"))
    state = state.with_sink(SinkRecord(sink="file", authorization_id=None, ref="x"))
    assert state.sink("kv") == SinkRecord(sink="kv", authorization_id="new", ref="2")
    assert state.sink("missing") is None
    assert len(state.sinks) == 2
    assert state.served_ids() == {"new"}
    assert state.referenced_ids() == {"new", "old"}


def test_audit_record_is_json_serialisable() -> None:
    import json

    record = AuditRecord(
        at=T0, kind="promoted", token_name="t", detail=(("sinks", 2), ("ok", True))
    )
    data = json.loads(json.dumps(record.to_json()))
    assert data == {  # what `patwarden audit -o json` prints per record
        "seq": None,
        "at": "2026-01-01T00:00:00+00:00",
        "kind": "promoted",
        "token": "t",
        "operation_id": None,
        "authorization_id": None,
        "detail": {"sinks": 2, "ok": True},
    }
