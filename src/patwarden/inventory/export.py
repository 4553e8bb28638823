"""Stream inventory rows as JSON or CSV, row by row, with stable documented columns.

The schemas are documented in ``docs/inventory.md`` ("Output schemas"); changing a name or
meaning here is a breaking change and needs a new ``schema`` value. Both writers hold one row at a
time, so a 50,000-PAT export needs no more memory than a 5-PAT one.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from patwarden.domain.text import visible_controls
from patwarden.inventory.findings import FindingRules
from patwarden.inventory.model import InventoryRow
from patwarden.inventory.summary import InventorySummary

JSON_SCHEMA = "patwarden.inventory/v1"

CSV_COLUMNS: tuple[str, ...] = (
    "organization",
    "owner",
    "owner_descriptor",
    "owner_status",
    "authorization_id",
    "display_name",
    "scopes",
    "valid_from",
    "valid_to",
    "lifetime_days",
    "days_to_expiry",
    "status",
    "is_global",
    "managed",
    "max_severity",
    "findings",
)

# A cell starting with one of these is run as a formula by spreadsheet programs; display names
# are chosen by PAT owners, so every text cell starting with one gets a leading apostrophe (OWASP
# "CSV injection"), and control characters become visible escapes (docs/security.md). Numbers
# (days_to_expiry may be negative) are written as they are.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def iso(value: datetime | None) -> str | None:
    """Format an aware date-time as UTC ISO-8601 with ``Z`` (seconds precision); None stays None."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _days_between(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return (end - start).days


def row_to_json(row: InventoryRow, *, now: datetime) -> dict[str, Any]:
    """Return the JSON object of one row (schema ``patwarden.inventory/v1``, ``pats[]``)."""
    pat = row.pat
    worst = row.max_severity
    return {
        "organization": pat.organization,
        "owner": {
            "descriptor": pat.owner.descriptor,
            "principal_name": pat.owner.principal_name,
            "display_name": pat.owner.display_name,
            "status": pat.owner.status.value,
        },
        "authorization_id": pat.authorization_id,
        "display_name": pat.display_name,
        "scopes": list(pat.scopes),
        "valid_from": iso(pat.valid_from),
        "valid_to": iso(pat.valid_to),
        "lifetime_days": _days_between(pat.valid_from, pat.valid_to),
        "days_to_expiry": _days_between(now, pat.valid_to),
        "status": row.status.value,
        "is_global": pat.is_global,
        "managed": pat.managed,
        "max_severity": worst.label if worst is not None else None,
        "findings": [
            {
                "kind": f.kind.value,
                "severity": f.severity.label,
                "summary": f.summary,
                "fix": f.fix,
                "managed": f.managed,
            }
            for f in row.findings
        ],
    }


def summary_to_json(summary: InventorySummary) -> dict[str, Any]:
    """Return the JSON object of a summary (schema ``patwarden.inventory/v1``, ``summary``)."""
    return {
        "total_pats": summary.total_pats,
        "users_scanned": summary.users_scanned,
        "pats_with_findings": summary.pats_with_findings,
        "managed_with_findings": summary.managed_with_findings,
        "by_status": {k.value: v for k, v in summary.by_status.items()},
        "by_kind": {k.value: v for k, v in summary.by_kind.items()},
        "by_severity": {k.label: v for k, v in summary.by_severity.items()},
        "expiry_weeks": [
            {"start": iso(w.start), "end": iso(w.end), "count": w.count}
            for w in summary.expiry_weeks
        ],
    }


def rules_to_json(rules: FindingRules) -> dict[str, Any]:
    """Return the thresholds a report was made with."""
    return {
        "expiring_within_days": rules.expiring_within.days,
        "max_lifetime_days": rules.max_lifetime.days,
        "global_retirement": iso(rules.global_retirement),
        "broad_scopes": sorted(rules.broad_scopes),
    }


class JsonWriter:
    """Write one JSON document: header fields, then ``pats`` row by row, then the summary."""

    def __init__(
        self,
        out: TextIO,
        *,
        now: datetime,
        organizations: Sequence[str],
        rules: FindingRules,
    ) -> None:
        self._out = out
        self._now = now
        self._first = True
        head = {
            "schema": JSON_SCHEMA,
            "generated_at": iso(now),
            "organizations": list(organizations),
            "rules": rules_to_json(rules),
        }
        # Open the object, emit the header members, and open the "pats" array.
        out.write(json.dumps(head, indent=None)[:-1] + ', "pats": [')

    def write(self, row: InventoryRow) -> None:
        """Append one row to ``pats``."""
        self._out.write("\n  " if self._first else ",\n  ")
        self._first = False
        self._out.write(json.dumps(row_to_json(row, now=self._now), ensure_ascii=False))

    def finish(self, summary: InventorySummary, *, problems: Sequence[str] = ()) -> None:
        """Close ``pats`` and write ``summary`` and ``problems`` (scan errors, no secrets)."""
        tail = {"summary": summary_to_json(summary), "problems": list(problems)}
        self._out.write("\n], " + json.dumps(tail, indent=None)[1:] + "\n")


def _cell(value: str) -> str:
    value = visible_controls(value)
    return "'" + value if value.startswith(_FORMULA_START) else value


def row_to_csv(row: InventoryRow, *, now: datetime) -> list[str]:
    """Return one CSV record in :data:`CSV_COLUMNS` order (empty string for "not known")."""
    data = row_to_json(row, now=now)
    owner = data["owner"]

    def text(value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    values = [
        _cell(data["organization"]),
        _cell(owner["principal_name"] or owner["display_name"] or owner["descriptor"]),
        _cell(owner["descriptor"]),
        _cell(owner["status"]),
        _cell(data["authorization_id"]),
        _cell(data["display_name"]),
        _cell(" ".join(data["scopes"])),
        _cell(text(data["valid_from"])),
        _cell(text(data["valid_to"])),
        text(data["lifetime_days"]),  # numbers: a negative one is not a formula
        text(data["days_to_expiry"]),
        _cell(data["status"]),
        text(data["is_global"]),
        text(data["managed"]),
        _cell(text(data["max_severity"])),
        _cell(";".join(f["kind"] for f in data["findings"])),
    ]
    return values


class CsvWriter:
    """Write a header line of :data:`CSV_COLUMNS`, then one line per row (RFC 4180 quoting)."""

    def __init__(self, out: TextIO, *, now: datetime) -> None:
        self._writer = csv.writer(out, lineterminator="\n")
        self._now = now
        self._writer.writerow(CSV_COLUMNS)

    def write(self, row: InventoryRow) -> None:
        """Append one row."""
        self._writer.writerow(row_to_csv(row, now=self._now))
