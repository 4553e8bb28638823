"""Row helpers of the PostgreSQL state store (:mod:`patwarden.state.postgres`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import psycopg

from patwarden.domain.models import AuditRecord, JournalEntry
from patwarden.domain.operation import Operation
from patwarden.state.codec import StateCorrupt, encode_operation, iso, parse_iso

__all__ = ["advisory_lock", "audit_record", "journal_entry", "loads", "put_audit", "put_operation"]


def advisory_lock(conn: psycopg.Connection[Any], key: int, timeout: float) -> bool:
    """Take the session advisory lock *key*, waiting at most *timeout* seconds."""
    if timeout <= 0:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        return bool(row and row[0])
    ms = max(1, int(timeout * 1000))
    try:
        conn.execute(f"SET lock_timeout = {ms}")
        conn.execute("SELECT pg_advisory_lock(%s)", (key,))
    except psycopg.errors.LockNotAvailable:
        return False
    finally:
        if not conn.closed:
            conn.execute("SET lock_timeout = 0")
    return True


def put_operation(conn: psycopg.Connection[Any], op: Operation, *, updated_at: str) -> None:
    conn.execute(
        "INSERT INTO patwarden_operations (operation_id, token_name, step, outcome, finished,"
        " started_at, updated_at, record) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (operation_id) DO UPDATE SET step = EXCLUDED.step,"
        " outcome = EXCLUDED.outcome, finished = EXCLUDED.finished,"
        " updated_at = EXCLUDED.updated_at, record = EXCLUDED.record",
        (
            op.operation_id,
            op.token_name,
            op.step.value,
            None if op.outcome is None else op.outcome.value,
            op.step.is_terminal,
            iso(op.started_at),
            updated_at,
            json.dumps(encode_operation(op)),
        ),
    )


def put_audit(conn: psycopg.Connection[Any], record: AuditRecord) -> None:
    conn.execute(
        "INSERT INTO patwarden_audit (at, kind, token_name, operation_id, authorization_id,"
        " detail) VALUES (%s, %s, %s, %s, %s, %s)",
        (
            iso(record.at),
            record.kind,
            record.token_name,
            record.operation_id,
            record.authorization_id,
            json.dumps(dict(record.detail)),
        ),
    )


def journal_entry(row: Sequence[Any]) -> JournalEntry:
    seq, op_id, token, step, outcome, at, reason = row
    return JournalEntry(
        seq=int(seq),
        operation_id=op_id,
        token_name=token,
        step=step,
        outcome=outcome,
        at=parse_iso(at, field="journal.at"),
        reason=reason,
    )


def audit_record(row: Sequence[Any]) -> AuditRecord:
    seq, at, kind, token, op_id, pat_id, detail = row
    items = loads(detail)
    if not isinstance(items, dict):
        raise StateCorrupt(f"Audit record {seq} has an unreadable detail.")
    return AuditRecord(
        seq=int(seq),
        at=parse_iso(at, field="audit.at"),
        kind=kind,
        token_name=token,
        operation_id=op_id,
        authorization_id=pat_id,
        detail=tuple(items.items()),
    )


def loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise StateCorrupt("The state store has a record that is not valid JSON.") from None
