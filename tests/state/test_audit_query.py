"""The bounded audit query: its SQL, the exact time test and the limit counted on matches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from patwarden.domain.models import AuditRecord
from patwarden.state.audit_query import AuditQuery

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_filters_become_one_where_clause_with_parameters() -> None:
    query = AuditQuery.of(T0, kinds=["a", "b", "a"], tokens=("t",), limit=3, newest_first=True)
    sql, params = query.sql("audit", "?")
    assert " WHERE at >= ? AND kind IN (?, ?) AND token_name IN (?) ORDER BY seq DESC" in sql
    assert "LIMIT" not in sql  # the exact time test comes after: the limit is counted then
    assert params[1:] == ["a", "b", "t"]
    assert params[0] < T0.isoformat()  # a day's margin for records with another UTC offset
    assert AuditQuery.of(None, kinds=(), tokens=(), limit=4, newest_first=False).sql(
        "patwarden_audit", "%s"
    ) == (
        "SELECT seq, at, kind, token_name, operation_id, authorization_id, detail"
        " FROM patwarden_audit ORDER BY seq LIMIT 4",
        [],
    )


@pytest.mark.parametrize("limit", [0, -1])
def test_a_limit_below_one_is_refused(limit: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        AuditQuery.of(None, kinds=(), tokens=(), limit=limit, newest_first=False)


def _record(minutes: int) -> AuditRecord:
    return AuditRecord(at=T0 + timedelta(minutes=minutes), kind="rotated", seq=minutes)


def test_collect_stops_at_the_limit_of_matching_rows_and_reads_no_further() -> None:
    rows = [_record(m) for m in (1, 9, 2, 10, 11, 12, 13)]  # 1 and 2 are before since
    served: list[int] = []

    def fetch(n: int) -> list[Any]:
        batch = rows[len(served) : len(served) + min(n, 2)]  # pages of two
        served.extend(r.seq or 0 for r in batch)
        return batch

    query = AuditQuery(since=T0 + timedelta(minutes=5), limit=3)
    found = query.collect(fetch, lambda row: row)
    assert [r.seq for r in found] == [9, 10, 11]
    assert served == [1, 9, 2, 10, 11, 12]  # the last page was needed; nothing after it


def test_keep_compares_instants_not_offsets() -> None:
    query = AuditQuery(since=T0)
    minus_ten = timezone(timedelta(hours=-10))
    assert query.keep(AuditRecord(at=T0.astimezone(minus_ten), kind="x"))
    assert not query.keep(
        AuditRecord(at=(T0 - timedelta(seconds=1)).astimezone(minus_ten), kind="x")
    )


def test_document_entries_are_filtered_before_decoding_in_the_asked_order() -> None:
    audit = [
        {"seq": 1, "kind": "rotated", "token_name": "a"},
        {"seq": 2, "kind": "revoked", "token_name": "a"},
        {"seq": 3, "kind": "rotated", "token_name": "b"},
        {"seq": 4, "kind": "rotated", "token_name": "a"},
    ]
    query = AuditQuery(kinds=("rotated",), tokens=("a",), newest_first=True)
    assert [e["seq"] for e in query.entries(audit)] == [4, 1]
    assert [e["seq"] for e in AuditQuery().entries(audit)] == [1, 2, 3, 4]
