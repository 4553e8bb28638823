"""The state codec shared by every store: records round-trip, and a damaged one names its field.

Every backend (SQLite, PostgreSQL, Azure Blob) stores tokens and operations through it, so what
`patwarden state check` and a failed load say about a damaged state comes from here.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from patwarden.domain.operation import Outcome, Step
from patwarden.state.codec import (
    StateCorrupt,
    decode_operation,
    decode_token,
    encode_operation,
    encode_token,
)
from tests.state.test_contract import T0, operation, token_state

OP = "operation '" + "1" * 32 + "'"


def _full_operation() -> Any:
    return replace(
        operation(Step.REVOKED),
        pat_verified=True,
        new_revoked=True,
        revoke_at=T0 + timedelta(hours=6),
        revoked_at=T0 + timedelta(hours=7),
        untagged=("kv",),
        outcome=Outcome.STRANDED,
        note="a note",
    )


@pytest.mark.parametrize("op", [operation(), operation(Step.DONE), _full_operation()])
def test_an_operation_round_trips(op: Any) -> None:
    assert decode_operation(encode_operation(op)) == op


def test_a_token_state_round_trips_with_and_without_its_optional_parts() -> None:
    full = token_state()
    bare = replace(full, current=None, previous=None, revoke_at=None, sinks=(), updated_at=None)
    assert decode_token(encode_token(full)) == full
    assert decode_token(encode_token(replace(bare, last_operation_id=None))) == replace(
        bare, last_operation_id=None
    )


def test_an_operation_written_before_schema_2_still_reads() -> None:
    data = encode_operation(operation(Step.DONE))
    del data["revoked_at"], data["untagged"]
    decoded = decode_operation(data)
    assert decoded.revoked_at is None
    assert decoded.untagged == ()


def _damage(data: dict[str, Any], path: tuple[str | int, ...], value: object) -> None:
    for key in path[:-1]:
        data = data[key]  # type: ignore[index]
    data[path[-1]] = value  # type: ignore[index]


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        (("step",), "flying", f"{OP}.step/outcome/revoke_after"),
        (("outcome",), "won", f"{OP}.step/outcome/revoke_after"),
        (("revoke_after",), "soon", f"{OP}.step/outcome/revoke_after"),
        (("operation_id",), 7, f"{OP[:10]}7.operation_id"),
        (("display_name",), None, f"{OP}.display_name"),
        (("scopes",), "vso.code", f"{OP}.scopes"),
        (("requested_valid_to",), "later", f"{OP}.valid_to"),
        (("started_at",), "2026-01-01T00:00:00", f"{OP}.started_at"),  # no time zone
        (("previous",), "old", f"{OP}.previous"),
        (("new",), {"authorization_id": 5}, f"{OP}.new.authorization_id"),
        (("sinks",), "kv", OP),
        (("sinks", 0, "sink"), None, f"{OP}.sinks.sink"),
        (("sinks", 0, "status"), "lost", f"{OP}.sinks.status"),
        (("sinks", 0, "previous"), "v1", f"{OP}.sinks.previous"),
        (("sinks", 0, "written"), ["v2"], f"{OP}.sinks.written"),
        (("sinks", 0, "read_back"), "yes", f"{OP}.sinks.read_back"),
        (("revoke_at",), "soon", f"{OP}.revoke_at"),
        (("revoked_at",), 5, f"{OP}.revoked_at"),
        (("untagged",), "kv", f"{OP}.untagged"),
        (("reason",), 5, f"{OP}.reason"),
        (("note",), ["a"], f"{OP}.note"),
    ],
)
def test_a_damaged_operation_names_the_field(
    path: tuple[str | int, ...], value: object, named: str
) -> None:
    data = encode_operation(operation())
    _damage(data, path, value)
    with pytest.raises(StateCorrupt) as raised:
        decode_operation(data)
    assert repr(named) in raised.value.message
    assert "patwarden adopt" in (raised.value.hint or "")


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        (("token_name",), None, "token None.token_name"),
        (("organization",), 5, "token 't'.organization"),
        (("current",), "new", "token 't'.current"),
        (("previous",), ["old"], "token 't'.previous"),
        (("revoke_at",), "soon", "token 't'.revoke_at"),
        (("sinks",), "kv", "token 't'.sinks"),
        (("sinks", 0), None, "token 't'.sinks"),
        (("last_operation_id",), 5, "token 't'.last_operation_id"),
        (("updated_at",), "today", "token 't'.updated_at"),
    ],
)
def test_a_damaged_token_state_names_the_field(
    path: tuple[str | int, ...], value: object, named: str
) -> None:
    data = encode_token(token_state())
    _damage(data, path, value)
    with pytest.raises(StateCorrupt) as raised:
        decode_token(data)
    assert repr(named) in raised.value.message


def test_something_that_is_not_a_record_at_all_is_refused() -> None:
    for value in (None, "x", [1]):
        with pytest.raises(StateCorrupt, match="'operation'"):
            decode_operation(value)
        with pytest.raises(StateCorrupt, match="'token'"):
            decode_token(value)
