"""The Azure Blob state's document: the whole state as one JSON object (never a secret).

``{"format": "patwarden-state", "version": 1, "tokens": {name: token}, "operations": [...],
"journal": [...], "audit": [...]}``; operations keep their first-journaled order, journal
entries and audit records their sequence numbers. :mod:`patwarden.state.azblob` reads, changes
and writes it back conditionally; this module only converts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from patwarden.domain.models import AuditRecord, JournalEntry, ManagedTokenState
from patwarden.domain.operation import Operation
from patwarden.errors import StateError
from patwarden.state.audit_query import AuditQuery
from patwarden.state.codec import (
    StateCorrupt,
    decode_operation,
    decode_token,
    encode_operation,
    encode_token,
    iso,
    parse_iso,
)
from patwarden.state.dump import StateDump

__all__ = ["FORMAT", "VERSION", "Document"]

FORMAT = "patwarden-state"
VERSION = 1


class Document:
    """The decoded-on-demand state document."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    @classmethod
    def empty(cls) -> Document:
        """A state with nothing in it."""
        return cls(
            {
                "format": FORMAT,
                "version": VERSION,
                "tokens": {},
                "operations": [],
                "journal": [],
                "audit": [],
            }
        )

    @classmethod
    def parse(cls, raw: bytes, *, where: str) -> Document:
        """Decode a downloaded blob.

        Raises:
            StateError: not a patwarden state, or written by a newer patwarden.
        """
        try:
            data = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, ValueError):
            data = None
        if not raw:
            return cls.empty()
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise StateCorrupt(
                f"The blob {where} is not a patwarden state.",
                hint="Point `state:` at another blob, or restore this one from a previous version.",
            )
        version = data.get("version")
        if not isinstance(version, int) or version > VERSION:
            raise StateError(
                f"The state blob {where} has format version {version}, but this patwarden knows "
                f"only up to {VERSION}; a newer patwarden wrote it.",
                hint="Upgrade patwarden (or point this one at a different blob).",
            )
        for key, kind in (
            ("tokens", dict),
            ("operations", list),
            ("journal", list),
            ("audit", list),
        ):
            if not isinstance(data.get(key), kind):
                raise StateCorrupt(f"The state blob {where} has no readable {key!r}.")
        return cls(data)

    def serialize(self) -> bytes:
        """The blob's bytes."""
        return json.dumps(self.data, separators=(",", ":")).encode()

    @property
    def empty_state(self) -> bool:
        """Whether nothing was ever written into this state."""
        return not (self.data["tokens"] or self.data["journal"] or self.data["audit"])

    # --- reading -------------------------------------------------------------------------------

    def token(self, name: str) -> ManagedTokenState | None:
        value = self.data["tokens"].get(name)
        return None if value is None else decode_token(value)

    def tokens(self) -> list[ManagedTokenState]:
        return [decode_token(self.data["tokens"][n]) for n in sorted(self.data["tokens"])]

    def operation(self, operation_id: str) -> Operation | None:
        for item in self.data["operations"]:
            if item.get("operation_id") == operation_id:
                return decode_operation(item)
        return None

    def operations(
        self, token_name: str | None = None, *, unfinished: bool = False
    ) -> list[Operation]:
        ops = [decode_operation(item) for item in self.data["operations"]]
        ops = [o for o in ops if token_name is None or o.token_name == token_name]
        if unfinished:
            ops = [o for o in ops if not o.step.is_terminal]
        return sorted(ops, key=lambda o: iso(o.started_at))  # stable: first-journaled order

    def journal(self, operation_id: str | None = None) -> list[JournalEntry]:
        return [
            JournalEntry(
                seq=int(e["seq"]),
                operation_id=e["operation_id"],
                token_name=e["token_name"],
                step=e["step"],
                outcome=e.get("outcome"),
                at=parse_iso(e.get("at"), field="journal.at"),
                reason=e.get("reason"),
            )
            for e in self.data["journal"]
            if operation_id is None or e.get("operation_id") == operation_id
        ]

    def audit(self, query: AuditQuery | None = None) -> list[AuditRecord]:
        """The audit records that answer ``query`` (all, oldest first, if ``None``); entries of
        another kind or token are skipped before anything of them is decoded."""
        query = query or AuditQuery()
        records: list[AuditRecord] = []
        for e in query.entries(self.data["audit"]):
            record = _audit_record(e)
            if query.keep(record):
                records.append(record)
                if query.limit is not None and len(records) >= query.limit:
                    break
        return records

    def dump(self) -> StateDump:
        return StateDump(
            tokens=tuple(self.tokens()),
            operations=tuple(self.operations()),
            journal=tuple(self.journal()),
            audit=tuple(self.audit()),
        )

    # --- changing ------------------------------------------------------------------------------

    def put_token(self, state: ManagedTokenState) -> None:
        self.data["tokens"][state.token_name] = encode_token(state)

    def put_operation(self, op: Operation) -> None:
        encoded = encode_operation(op)
        items = self.data["operations"]
        for index, item in enumerate(items):
            if item.get("operation_id") == op.operation_id:
                items[index] = encoded
                return
        items.append(encoded)

    def append_journal(self, op: Operation, *, at: str, lease: str | None) -> None:
        self.append_entry(
            operation_id=op.operation_id,
            token_name=op.token_name,
            step=op.step.value,
            outcome=None if op.outcome is None else op.outcome.value,
            reason=op.reason,
            at=at,
            lease=lease,
        )

    def append_entry(self, *, lease: str | None = None, **entry: Any) -> None:
        journal = self.data["journal"]
        seq = int(journal[-1]["seq"]) + 1 if journal else 1
        journal.append({"seq": seq, **entry, "lease": lease})

    def append_audit(self, records: Sequence[AuditRecord]) -> None:
        audit = self.data["audit"]
        for record in records:
            seq = int(audit[-1]["seq"]) + 1 if audit else 1
            audit.append(
                {
                    "seq": seq,
                    "at": iso(record.at),
                    "kind": record.kind,
                    "token_name": record.token_name,
                    "operation_id": record.operation_id,
                    "authorization_id": record.authorization_id,
                    "detail": dict(record.detail),
                }
            )

    def load_dump(self, dump: StateDump) -> None:
        """Fill this (empty) document with *dump*, keeping order and times."""
        for op in dump.operations:
            self.put_operation(op)
        for token in dump.tokens:
            self.put_token(token)
        for entry in dump.journal:
            self.append_entry(
                operation_id=entry.operation_id,
                token_name=entry.token_name,
                step=entry.step,
                outcome=entry.outcome,
                reason=entry.reason,
                at=iso(entry.at),
            )
        self.append_audit(dump.audit)


def _audit_record(e: dict[str, Any]) -> AuditRecord:
    detail = e.get("detail")
    if not isinstance(detail, dict):
        raise StateCorrupt(f"Audit record {e.get('seq')} has an unreadable detail.")
    return AuditRecord(
        seq=int(e["seq"]),
        at=parse_iso(e.get("at"), field="audit.at"),
        kind=e["kind"],
        token_name=e.get("token_name"),
        operation_id=e.get("operation_id"),
        authorization_id=e.get("authorization_id"),
        detail=tuple(detail.items()),
    )
