"""One bounded read of the audit log, as every state backend answers it.

:meth:`~patwarden.rotation.ports.StateStore.audit` takes filters (time, kinds, tokens) and a
limit, newest first if asked. SQLite and PostgreSQL turn them into one indexed query
(:meth:`AuditQuery.sql`: ``audit_by_kind`` / ``audit_by_token`` on ``(kind, seq)`` and
``(token_name, seq)``, the primary key for the order); the Azure Blob document filters its
entries before decoding them (:meth:`AuditQuery.entries`). A run's own reads (the last sign-in of a
rotator, the status page's recent events) so cost what they return, not the size of the history.

Times are stored as ISO 8601 text. The SQL narrows ``since`` on that text with a day's margin
(a record written with another UTC offset still passes), and :meth:`AuditQuery.keep` decides on
the parsed time, so the answer is exact whatever offset a record was written with.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from patwarden.domain.models import AuditRecord
from patwarden.state.codec import iso

__all__ = ["AUDIT_COLUMNS", "AuditQuery"]

AUDIT_COLUMNS = "seq, at, kind, token_name, operation_id, authorization_id, detail"
_OFFSET_MARGIN = timedelta(days=1)  # wider than any UTC offset a record's text may carry


@dataclass(frozen=True, kw_only=True)
class AuditQuery:
    """Which audit records to return, in which order, how many at most."""

    since: datetime | None = None
    kinds: tuple[str, ...] = ()
    tokens: tuple[str, ...] = ()
    limit: int | None = None
    newest_first: bool = False

    @classmethod
    def of(
        cls,
        since: datetime | None,
        *,
        kinds: Collection[str],
        tokens: Collection[str],
        limit: int | None,
        newest_first: bool,
    ) -> AuditQuery:
        """The query of a :meth:`StateStore.audit` call (``limit`` below 1 is refused)."""
        if limit is not None and limit < 1:
            raise ValueError("an audit limit must be at least 1")
        return cls(
            since=since,
            kinds=tuple(dict.fromkeys(kinds)),
            tokens=tuple(dict.fromkeys(tokens)),
            limit=limit,
            newest_first=newest_first,
        )

    def sql(self, table: str, mark: str) -> tuple[str, list[Any]]:
        """The SELECT of :data:`AUDIT_COLUMNS` from ``table`` (``mark``: the driver's
        placeholder) and its parameters. Rows it returns still go through :meth:`keep`."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.since is not None:
            clauses.append(f"at >= {mark}")
            params.append(iso((self.since - _OFFSET_MARGIN).astimezone(UTC)))
        for column, values in (("kind", self.kinds), ("token_name", self.tokens)):
            if values:
                clauses.append(f"{column} IN ({', '.join([mark] * len(values))})")
                params.extend(values)
        sql = f"SELECT {AUDIT_COLUMNS} FROM {table}"  # noqa: S608 - table and mark are ours
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY seq DESC" if self.newest_first else " ORDER BY seq"
        if self.limit is not None and self.since is None:  # nothing left for keep() to drop
            sql += f" LIMIT {int(self.limit)}"
        return sql, params

    def keep(self, record: AuditRecord) -> bool:
        """Whether ``record`` answers the query (the exact test of ``since``)."""
        return self.since is None or record.at >= self.since

    def collect(
        self, rows: Callable[[int], Sequence[Any]], decode: Callable[[Any], AuditRecord]
    ) -> list[AuditRecord]:
        """Decode the rows of :meth:`sql` page by page (``rows(n)``: the next n rows, none when
        done) and keep those that answer the query, up to its limit."""
        found: list[AuditRecord] = []
        page = 256 if self.limit is None else min(max(self.limit, 16), 1024)
        while self.limit is None or len(found) < self.limit:
            batch = rows(page)
            if not batch:
                break
            for row in batch:
                record = decode(row)
                if self.keep(record):
                    found.append(record)
                    if self.limit is not None and len(found) >= self.limit:
                        break
        return found

    def entries(self, audit: Sequence[dict[str, Any]]) -> Iterable[dict[str, Any]]:
        """The raw entries of a document's audit list that may answer the query (kind and token
        tested before anything is decoded), in the query's order; :meth:`keep` still applies."""
        ordered = reversed(audit) if self.newest_first else iter(audit)
        kinds, tokens = set(self.kinds), set(self.tokens)
        for entry in ordered:
            if kinds and entry.get("kind") not in kinds:
                continue
            if tokens and entry.get("token_name") not in tokens:
                continue
            yield entry
