"""JSON encoding of the domain records the state store keeps (never a secret).

Datetimes are ISO 8601 with their offset; durations are seconds. Decoding validates the shape
and raises :class:`StateCorrupt` naming the field, so a damaged row never turns into a crash.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from patwarden.domain.models import IssuedPat, ManagedTokenState, SinkRecord
from patwarden.domain.operation import Operation, Outcome, SinkProgress, SinkStatus, Step
from patwarden.errors import StateError

__all__ = [
    "StateCorrupt",
    "decode_operation",
    "decode_token",
    "encode_operation",
    "encode_token",
    "iso",
    "parse_iso",
]


class StateCorrupt(StateError):
    """A stored record cannot be decoded."""


def iso(value: datetime) -> str:
    """Return ``value`` as ISO 8601; naive datetimes are refused (every time is UTC-aware).

    Raises:
        ValueError: ``value`` has no timezone (a programming error).
    """
    if value.tzinfo is None:
        raise ValueError("state timestamps must be timezone-aware")
    return value.isoformat()


def parse_iso(value: object, *, field: str) -> datetime:
    """Parse an ISO 8601 timestamp written by :func:`iso`.

    Raises:
        StateCorrupt: the value is not such a timestamp.
    """
    if not isinstance(value, str):
        raise _corrupt(field)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _corrupt(field) from None
    if parsed.tzinfo is None:
        raise _corrupt(field)
    return parsed


def _corrupt(field: str) -> StateCorrupt:
    return StateCorrupt(
        f"The state store has an unreadable value in {field!r}.",
        hint="Restore the state file from a backup, or move it aside and run `patwarden adopt`.",
    )


def _opt_time(data: dict[str, Any], key: str, where: str) -> datetime | None:
    value = data.get(key)
    return None if value is None else parse_iso(value, field=f"{where}.{key}")


def _str(data: dict[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise _corrupt(f"{where}.{key}")
    return value


def _opt_str(data: dict[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise _corrupt(f"{where}.{key}")
    return value


def _obj(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _corrupt(where)
    return value


def _list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _corrupt(where)
    return value


def encode_pat(pat: IssuedPat | None) -> dict[str, Any] | None:
    """Encode an issued PAT's metadata."""
    if pat is None:
        return None
    return {
        "authorization_id": pat.authorization_id,
        "display_name": pat.display_name,
        "valid_from": iso(pat.valid_from),
        "valid_to": iso(pat.valid_to),
        "scopes": list(pat.scopes),
    }


def decode_pat(value: object, where: str) -> IssuedPat | None:
    """Decode :func:`encode_pat` output.

    Raises:
        StateCorrupt: the shape is wrong.
    """
    if value is None:
        return None
    data = _obj(value, where)
    scopes = _list(data.get("scopes", []), f"{where}.scopes")
    return IssuedPat(
        authorization_id=_str(data, "authorization_id", where),
        display_name=_str(data, "display_name", where),
        valid_from=parse_iso(data.get("valid_from"), field=f"{where}.valid_from"),
        valid_to=parse_iso(data.get("valid_to"), field=f"{where}.valid_to"),
        scopes=tuple(str(s) for s in scopes),
    )


def _encode_record(record: SinkRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {"sink": record.sink, "authorization_id": record.authorization_id, "ref": record.ref}


def _decode_record(value: object, where: str) -> SinkRecord | None:
    if value is None:
        return None
    data = _obj(value, where)
    return SinkRecord(
        sink=_str(data, "sink", where),
        authorization_id=_opt_str(data, "authorization_id", where),
        ref=_opt_str(data, "ref", where),
    )


def _decode_record_required(value: object, where: str) -> SinkRecord:
    record = _decode_record(value, where)
    if record is None:
        raise _corrupt(where)
    return record


def encode_token(state: ManagedTokenState) -> dict[str, Any]:
    """Encode a token's state."""
    return {
        "token_name": state.token_name,
        "organization": state.organization,
        "current": encode_pat(state.current),
        "previous": encode_pat(state.previous),
        "revoke_at": None if state.revoke_at is None else iso(state.revoke_at),
        "sinks": [_encode_record(r) for r in state.sinks],
        "last_operation_id": state.last_operation_id,
        "updated_at": None if state.updated_at is None else iso(state.updated_at),
    }


def decode_token(value: object) -> ManagedTokenState:
    """Decode :func:`encode_token` output.

    Raises:
        StateCorrupt: the shape is wrong.
    """
    data = _obj(value, "token")
    where = f"token {data.get('token_name')!r}"
    return ManagedTokenState(
        token_name=_str(data, "token_name", where),
        organization=_str(data, "organization", where),
        current=decode_pat(data.get("current"), f"{where}.current"),
        previous=decode_pat(data.get("previous"), f"{where}.previous"),
        revoke_at=_opt_time(data, "revoke_at", where),
        sinks=tuple(
            _decode_record_required(r, f"{where}.sinks")
            for r in _list(data.get("sinks", []), f"{where}.sinks")
        ),
        last_operation_id=_opt_str(data, "last_operation_id", where),
        updated_at=_opt_time(data, "updated_at", where),
    )


def _encode_progress(progress: SinkProgress) -> dict[str, Any]:
    return {
        "sink": progress.sink,
        "status": progress.status.value,
        "previous": _encode_record(progress.previous),
        "written": _encode_record(progress.written),
        "read_back": progress.read_back,
    }


def _decode_progress(value: object, where: str) -> SinkProgress:
    data = _obj(value, where)
    read_back = data.get("read_back")
    if read_back is not None and not isinstance(read_back, bool):
        raise _corrupt(f"{where}.read_back")
    try:
        status = SinkStatus(str(data.get("status")))
    except ValueError:
        raise _corrupt(f"{where}.status") from None
    return SinkProgress(
        sink=_str(data, "sink", where),
        status=status,
        previous=_decode_record(data.get("previous"), f"{where}.previous"),
        written=_decode_record(data.get("written"), f"{where}.written"),
        read_back=read_back,
    )


def encode_operation(op: Operation) -> dict[str, Any]:
    """Encode an operation."""
    return {
        "operation_id": op.operation_id,
        "token_name": op.token_name,
        "organization": op.organization,
        "display_name": op.display_name,
        "scopes": list(op.scopes),
        "requested_valid_to": iso(op.requested_valid_to),
        "revoke_after": op.revoke_after.total_seconds(),
        "started_at": iso(op.started_at),
        "step": op.step.value,
        "previous": encode_pat(op.previous),
        "new": encode_pat(op.new),
        "sinks": [_encode_progress(p) for p in op.sinks],
        "pat_verified": op.pat_verified,
        "new_revoked": op.new_revoked,
        "revoke_at": None if op.revoke_at is None else iso(op.revoke_at),
        "revoked_at": None if op.revoked_at is None else iso(op.revoked_at),
        "untagged": list(op.untagged),
        "outcome": None if op.outcome is None else op.outcome.value,
        "reason": op.reason,
        "note": op.note,
    }


def decode_operation(value: object) -> Operation:
    """Decode :func:`encode_operation` output.

    Raises:
        StateCorrupt: the shape is wrong.
    """
    data = _obj(value, "operation")
    where = f"operation {data.get('operation_id')!r}"
    try:
        step = Step(str(data.get("step")))
        outcome = None if data.get("outcome") is None else Outcome(str(data.get("outcome")))
        revoke_after = timedelta(seconds=float(data["revoke_after"]))
    except (ValueError, KeyError, TypeError):
        raise _corrupt(f"{where}.step/outcome/revoke_after") from None
    return Operation(
        operation_id=_str(data, "operation_id", where),
        token_name=_str(data, "token_name", where),
        organization=_str(data, "organization", where),
        display_name=_str(data, "display_name", where),
        scopes=tuple(str(s) for s in _list(data.get("scopes"), f"{where}.scopes")),
        requested_valid_to=parse_iso(data.get("requested_valid_to"), field=f"{where}.valid_to"),
        revoke_after=revoke_after,
        started_at=parse_iso(data.get("started_at"), field=f"{where}.started_at"),
        step=step,
        previous=decode_pat(data.get("previous"), f"{where}.previous"),
        new=decode_pat(data.get("new"), f"{where}.new"),
        sinks=tuple(_decode_progress(p, f"{where}.sinks") for p in _list(data.get("sinks"), where)),
        pat_verified=bool(data.get("pat_verified")),
        new_revoked=bool(data.get("new_revoked")),
        revoke_at=_opt_time(data, "revoke_at", where),
        revoked_at=_opt_time(data, "revoked_at", where),  # absent before schema 2
        untagged=tuple(str(s) for s in _list(data.get("untagged", []), f"{where}.untagged")),
        outcome=outcome,
        reason=_opt_str(data, "reason", where),
        note=_opt_str(data, "note", where),
    )
