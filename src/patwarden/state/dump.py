"""A whole state as plain records: what `state migrate` copies and `state check` reads.

Every backend can export a :class:`StateDump` and import one into an empty store, keeping the
journal's and the audit log's order, timestamps and contents. :func:`check_dump` lists what is
inconsistent in a dump (an empty list: the state is sound). Never a secret.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from patwarden.domain.models import AuditRecord, JournalEntry, ManagedTokenState
from patwarden.domain.operation import Operation
from patwarden.errors import StateError
from patwarden.state.codec import StateCorrupt, decode_operation, decode_token, parse_iso

__all__ = ["StateDump", "check_dump", "read_sqlite"]


@dataclass(frozen=True)
class StateDump:
    """Tokens, operations (oldest first), journal entries and audit records (in order)."""

    tokens: tuple[ManagedTokenState, ...] = ()
    operations: tuple[Operation, ...] = ()
    journal: tuple[JournalEntry, ...] = ()
    audit: tuple[AuditRecord, ...] = field(default=())

    @property
    def empty(self) -> bool:
        """Whether the state holds nothing at all."""
        return not (self.tokens or self.operations or self.journal or self.audit)

    def counts(self) -> str:
        """``3 tokens, 7 operations, 41 journal entries, 52 audit records``."""
        return (
            f"{len(self.tokens)} tokens, {len(self.operations)} operations, "
            f"{len(self.journal)} journal entries, {len(self.audit)} audit records"
        )


def _json(text: str, where: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        raise StateCorrupt(f"The state has a record that is not valid JSON ({where}).") from None


def read_sqlite(path: Path, *, open_store: Callable[[], object]) -> StateDump:
    """Read the whole SQLite state at *path* (first opened by *open_store*, which migrates it).

    Raises:
        StateError: the file cannot be read or holds damaged records.
    """
    opened = open_store()
    close = getattr(opened, "close", None)
    if callable(close):
        close()
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StateError(f"Cannot read the state file {path}: {exc}.") from None
    try:
        tokens = tuple(
            decode_token(_json(r[0], "tokens"))
            for r in conn.execute("SELECT record FROM tokens ORDER BY name")
        )
        operations = tuple(
            decode_operation(_json(r[0], "operations"))
            for r in conn.execute("SELECT record FROM operations ORDER BY started_at, rowid")
        )
        journal = tuple(
            JournalEntry(
                seq=seq,
                operation_id=op_id,
                token_name=token,
                step=step,
                outcome=outcome,
                at=parse_iso(at, field="journal.at"),
                reason=reason,
            )
            for seq, op_id, token, step, outcome, at, reason in conn.execute(
                "SELECT seq, operation_id, token_name, step, outcome, at, reason FROM journal"
                " ORDER BY seq"
            )
        )
        audit = []
        for seq, at, kind, token, op_id, pat_id, detail in conn.execute(
            "SELECT seq, at, kind, token_name, operation_id, authorization_id, detail"
            " FROM audit ORDER BY seq"
        ):
            items = _json(detail, f"audit {seq}")
            if not isinstance(items, dict):
                raise StateCorrupt(f"Audit record {seq} has an unreadable detail.")
            audit.append(
                AuditRecord(
                    seq=seq,
                    at=parse_iso(at, field="audit.at"),
                    kind=kind,
                    token_name=token,
                    operation_id=op_id,
                    authorization_id=pat_id,
                    detail=tuple(items.items()),
                )
            )
    except sqlite3.Error as exc:
        raise StateError(f"Cannot read the state file {path}: {exc}.") from None
    finally:
        conn.close()
    return StateDump(tokens=tokens, operations=operations, journal=journal, audit=tuple(audit))


def check_dump(dump: StateDump) -> list[str]:
    """Return every inconsistency found in *dump* (empty: the state is sound)."""
    problems: list[str] = []
    op_ids = {op.operation_id: op for op in dump.operations}
    for token in dump.tokens:
        if token.last_operation_id and token.last_operation_id not in op_ids:
            problems.append(
                f"token {token.token_name!r} names operation {token.last_operation_id} "
                "that is not in the state"
            )
    journaled: dict[str, list[JournalEntry]] = {}
    previous_seq = 0
    for entry in dump.journal:
        if entry.seq <= previous_seq:
            problems.append(f"journal entry {entry.seq} is out of order")
        previous_seq = entry.seq
        journaled.setdefault(entry.operation_id, []).append(entry)
        if entry.operation_id not in op_ids:
            problems.append(f"journal entry {entry.seq} belongs to an unknown operation")
    for op in dump.operations:
        entries = journaled.get(op.operation_id)
        if not entries:
            problems.append(f"operation {op.operation_id} ({op.token_name}) has no journal entry")
        elif entries[-1].step != op.step.value:
            problems.append(
                f"operation {op.operation_id} stands at {op.step.value} but its journal ends "
                f"at {entries[-1].step}"
            )
    previous_seq = 0
    for record in dump.audit:
        if record.seq is not None and record.seq <= previous_seq:
            problems.append(f"audit record {record.seq} is out of order")
        previous_seq = record.seq or previous_seq
    return problems
