"""Test data builders for inventory tests."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from patwarden.inventory.model import Owner, PatRecord

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def pat(**changes: object) -> PatRecord:
    """A clean PAT: org-scoped, read-only, 30-day lifetime, 20 days left, active owner."""
    base = PatRecord(
        organization="contoso",
        owner=Owner(descriptor="aad.alice", principal_name="alice@contoso.example"),
        authorization_id="11111111-1111-1111-1111-111111111111",
        display_name="ci-feed-reader",
        scopes=("vso.packaging",),
        valid_from=NOW - 10 * DAY,
        valid_to=NOW + 20 * DAY,
        is_global=False,
        is_valid=True,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def data_of(page: str) -> list[dict[str, object]]:
    """The PATs the page carries in its JSON data block."""
    opening = '<script id="inventory-data" type="application/json">'
    block = page.split(opening, 1)[1].split("</script>", 1)[0]
    rows = json.loads(block)
    assert isinstance(rows, list)
    return rows
