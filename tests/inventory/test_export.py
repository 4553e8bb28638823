"""JSON and CSV exports: valid documents, stable columns, spreadsheet-safe cells."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace

from patwarden.inventory.export import (
    CSV_COLUMNS,
    JSON_SCHEMA,
    CsvWriter,
    JsonWriter,
    row_to_json,
)
from patwarden.inventory.findings import FindingRules, evaluate
from patwarden.inventory.model import InventoryRow, Owner, OwnerStatus
from patwarden.inventory.summary import SummaryBuilder
from tests.inventory.factories import DAY, NOW, pat

RULES = FindingRules()


def rows() -> list[InventoryRow]:
    records = [
        pat(),
        pat(is_global=True, scopes=("app_token",), authorization_id="g-1", managed=True),
        pat(
            display_name='=HYPERLINK("http://evil","x")',
            owner=Owner(descriptor="aad.bob", principal_name=None, display_name="Bob, Jr."),
            authorization_id="weird",
        ),
        pat(valid_from=None, valid_to=NOW - DAY, authorization_id="old"),
        pat(owner=Owner(descriptor="aad.gone", status=OwnerStatus.REMOVED), authorization_id="r"),
    ]
    return [evaluate(r, now=NOW, rules=RULES) for r in records]


def write_json(items: list[InventoryRow], problems: tuple[str, ...] = ()) -> dict[str, object]:
    out = io.StringIO()
    writer = JsonWriter(out, now=NOW, organizations=["contoso", "fabrikam"], rules=RULES)
    builder = SummaryBuilder(now=NOW, organizations=("contoso", "fabrikam"))
    for row in items:
        writer.write(row)
        builder.add(row)
    writer.finish(builder.summary(users_scanned=3), problems=problems)
    document = json.loads(out.getvalue())
    assert isinstance(document, dict)
    return document


def test_json_document_shape() -> None:
    document = write_json(rows(), problems=("Skipped the PATs of x in contoso: HTTP 500",))
    assert list(document) == [
        "schema",
        "generated_at",
        "organizations",
        "rules",
        "pats",
        "summary",
        "problems",
    ]
    assert document["schema"] == JSON_SCHEMA
    assert document["generated_at"] == "2026-11-27T12:00:00Z"
    assert document["organizations"] == ["contoso", "fabrikam"]
    assert document["rules"]["expiring_within_days"] == 14  # type: ignore[index]
    assert document["rules"]["global_retirement"] == "2026-12-01T00:00:00Z"  # type: ignore[index]
    pats = document["pats"]
    assert isinstance(pats, list)
    assert len(pats) == 5
    summary = document["summary"]
    assert isinstance(summary, dict)
    assert summary["total_pats"] == 5
    assert summary["users_scanned"] == 3
    assert summary["by_kind"]["global"] == 1
    assert summary["by_severity"]["critical"] == 1
    assert len(summary["expiry_weeks"]) == 13
    assert document["problems"] == ["Skipped the PATs of x in contoso: HTTP 500"]


def test_json_row_fields() -> None:
    row = row_to_json(rows()[1], now=NOW)
    assert row == {
        "organization": "contoso",
        "owner": {
            "descriptor": "aad.alice",
            "principal_name": "alice@contoso.example",
            "display_name": None,
            "status": "active",
        },
        "authorization_id": "g-1",
        "display_name": "ci-feed-reader",
        "scopes": ["app_token"],
        "valid_from": "2026-11-17T12:00:00Z",
        "valid_to": "2026-12-17T12:00:00Z",
        "lifetime_days": 30,
        "days_to_expiry": 20,
        "status": "active",
        "is_global": True,
        "managed": True,
        "max_severity": "critical",
        "findings": [
            {
                "kind": "global",
                "severity": "critical",
                "summary": row["findings"][0]["summary"],
                "fix": row["findings"][0]["fix"],
                "managed": True,
            },
            {
                "kind": "full-access",
                "severity": "high",
                "summary": "Full access (app_token): can do anything its owner can.",
                "fix": row["findings"][1]["fix"],
                "managed": True,
            },
        ],
    }


def test_json_with_no_rows_is_valid() -> None:
    document = write_json([])
    assert document["pats"] == []
    assert document["problems"] == []


def test_csv_header_rows_and_quoting() -> None:
    out = io.StringIO()
    writer = CsvWriter(out, now=NOW)
    for row in rows():
        writer.write(row)
    records = list(csv.reader(io.StringIO(out.getvalue())))
    assert tuple(records[0]) == CSV_COLUMNS
    assert len(records) == 6
    assert all(len(r) == len(CSV_COLUMNS) for r in records)
    by_id = {
        r[CSV_COLUMNS.index("authorization_id")]: dict(zip(CSV_COLUMNS, r, strict=True))
        for r in records[1:]
    }
    glob = by_id["g-1"]
    assert glob["findings"] == "global;full-access"
    assert glob["is_global"] == "true"
    assert glob["managed"] == "true"
    assert glob["max_severity"] == "critical"
    assert glob["scopes"] == "app_token"
    assert glob["valid_to"] == "2026-12-17T12:00:00Z"
    # A formula in a display name is neutralised; a comma in a name survives quoting.
    weird = by_id["weird"]
    assert weird["display_name"] == '\'=HYPERLINK("http://evil","x")'
    assert weird["owner"] == "Bob, Jr."
    old = by_id["old"]
    assert old["valid_from"] == ""
    assert old["lifetime_days"] == ""
    assert old["status"] == "expired"
    assert old["findings"] == "expired"
    assert old["days_to_expiry"] == "-1"
    assert by_id["r"]["owner_status"] == "removed"
    assert by_id["r"]["owner"] == "aad.gone"
    clean = by_id["11111111-1111-1111-1111-111111111111"]
    assert clean["findings"] == ""
    assert clean["max_severity"] == ""


# --- CSV injection and control characters (issue 11, items 5 and 8) ------------------------------


def test_every_text_column_is_neutralised_and_controls_are_visible() -> None:
    hostile = pat(
        display_name="@SUM(1+1)*cmd|' /C calc'!A0",
        scopes=('=HYPERLINK("https://evil.example","open")',),
        owner=Owner(descriptor="-2+3", principal_name="+cmd@contoso.example"),
        organization="=org",
    )
    row = evaluate(
        replace(hostile, display_name="\x1b]52;c;eA==\x07name"), now=NOW, rules=FindingRules()
    )
    out = io.StringIO()
    writer = CsvWriter(out, now=NOW)
    writer.write(row)
    writer.write(evaluate(hostile, now=NOW, rules=FindingRules()))
    records = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert "\x1b" not in out.getvalue()
    assert "\x07" not in out.getvalue()
    assert records[0]["display_name"] == "\\x1b]52;c;eA==\\x07name"
    second = records[1]
    assert second["scopes"].startswith("'=HYPERLINK(")
    assert second["display_name"].startswith("'@SUM")
    assert second["owner"] == "'+cmd@contoso.example"
    assert second["owner_descriptor"] == "'-2+3"
    assert second["organization"] == "'=org"
    for column, value in second.items():
        assert not value.startswith(("=", "+", "@")), column
