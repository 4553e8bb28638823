"""The SQLite schema's upgrade to version 3: the audit log's indexes, on a file as version 2
made it, and the bounded audit reads use them."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from patwarden.domain.models import AuditRecord
from patwarden.state.audit_query import AuditQuery
from patwarden.state.sqlite import SqliteStateStore
from patwarden.state.sqlite_schema import MIGRATIONS, SCHEMA_VERSION

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _version_2_file(path: Path) -> None:
    """A state file exactly as schema version 2 made it, with some audit history."""
    conn = sqlite3.connect(path)
    for migration in MIGRATIONS[:2]:
        migration(conn)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version (version) VALUES (2)")
    for i in range(30):
        conn.execute(
            "INSERT INTO audit (at, kind, token_name, detail) VALUES (?, ?, ?, '{}')",
            ((T0 + timedelta(minutes=i)).isoformat(), ("rotated", "revoked")[i % 2], f"t{i % 3}"),
        )
    conn.commit()
    conn.close()
    path.chmod(0o600)


def _indexes(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
    finally:
        conn.close()
    return {name for (name,) in rows}


def test_a_version_2_file_gets_the_audit_indexes_and_keeps_its_history(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    _version_2_file(path)
    assert {"audit_by_kind", "audit_by_token"}.isdisjoint(_indexes(path))
    with SqliteStateStore(path=path, now=lambda: T0) as store:
        assert store.schema_version() == SCHEMA_VERSION == 3
        newest = list(store.audit(tokens=["t1"], kinds=["revoked"], newest_first=True, limit=2))
        assert [(r.kind, r.token_name, r.at) for r in newest] == [
            ("revoked", "t1", T0 + timedelta(minutes=25)),
            ("revoked", "t1", T0 + timedelta(minutes=19)),
        ]
        assert len(list(store.audit())) == 30
        store.append_audit(AuditRecord(at=T0 + timedelta(hours=1), kind="sign_in_ok"))
    assert {"audit_by_kind", "audit_by_token"} <= _indexes(path)
    with SqliteStateStore(path=path, now=lambda: T0) as again:  # reopening migrates nothing
        assert again.schema_version() == SCHEMA_VERSION
        assert [r.kind for r in again.audit(kinds=["sign_in_ok"])] == ["sign_in_ok"]


def test_the_bounded_reads_search_an_index_instead_of_scanning_the_log(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SqliteStateStore(path=path, now=lambda: T0).close()
    conn = sqlite3.connect(path)
    try:
        for query, index in [
            (
                AuditQuery(since=T0, kinds=("sign_in_failed", "sign_in_ok"), newest_first=True),
                "audit_by_kind",
            ),
            (AuditQuery(tokens=("t",), newest_first=True, limit=5), "audit_by_token"),
        ]:
            sql, params = query.sql("audit", "?")
            plan = " ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
            assert f"USING INDEX {index}" in plan, plan
        sql, params = AuditQuery(limit=50, newest_first=True).sql("audit", "?")
        assert sql.endswith("ORDER BY seq DESC LIMIT 50")  # the newest rows by primary key
    finally:
        conn.close()
