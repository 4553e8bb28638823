"""Bulk revocation of the PATs an inventory selected, through Token Admin, audited.

Selection is pure (:class:`RevocationSelection`). :class:`BulkRevoker` is fed rows while the scan
streams, revokes them in batches per organization, writes one audit record per PAT revoked (or
failed), and keeps only counts and the first few outcomes, so memory stays flat. When a batch
fails for a reason other than access, its PATs are retried one by one so the report says exactly
which ones failed. Access denied stops everything: nothing else would work either.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from patwarden.domain.marker import parse_marker
from patwarden.domain.models import AuditRecord
from patwarden.errors import AuthError, ConfigError, PatwardenError
from patwarden.inventory.model import FindingKind, InventoryRow

logger = logging.getLogger(__name__)

AUDIT_REVOKED = "inventory.revoked"
AUDIT_REVOKE_FAILED = "inventory.revoke_failed"
MAX_KEPT = 200


class Revoker(Protocol):
    """Revokes PATs by authorization id in one organization (Token Admin)."""

    def revoke(self, *, organization: str, authorization_ids: Collection[str]) -> None:
        """Revoke every id; raise on failure."""
        ...


@dataclass(frozen=True, kw_only=True)
class RevocationSelection:
    """Which rows to revoke: any finding of *kinds*, optionally only of some owners.

    *users* match an owner's principal name (case-insensitive) or Graph descriptor.

    Raises:
        ConfigError: no finding kind was given (revoking "everything" is not offered).
    """

    kinds: frozenset[FindingKind]
    users: frozenset[str] = frozenset()
    # Managed PATs (a configured token's, see `default_is_managed`) only when asked: revoking
    # a managed token's current PAT breaks its consumers until the next rotation.
    include_managed: bool = False

    def __post_init__(self) -> None:
        if not self.kinds:
            raise ConfigError(
                "No finding selected to revoke.",
                hint="Pass --finding KIND (repeatable), e.g. --finding global.",
            )
        object.__setattr__(self, "users", frozenset(u.lower() for u in self.users))

    def matches(self, row: InventoryRow) -> bool:
        """True when *row* has a selected finding and (if users were given) a selected owner,
        and is not a managed PAT left out (see :meth:`skips`)."""
        return self.selects(row) and not self.skips(row)

    def skips(self, row: InventoryRow) -> bool:
        """True when *row* is selected but left alone because patwarden manages it."""
        return row.pat.managed and not self.include_managed and self.selects(row)

    def selects(self, row: InventoryRow) -> bool:
        """True when *row* has a selected finding and (if users were given) a selected owner."""
        if not row.has_any(self.kinds):
            return False
        if not self.users:
            return True
        owner = row.pat.owner
        names = {owner.descriptor.lower(), (owner.principal_name or "").lower()}
        return bool(names & self.users)


@dataclass(frozen=True, kw_only=True)
class RevocationOutcome:
    """One selected PAT and what happened to it (``error`` is None when it was revoked)."""

    row: InventoryRow
    error: str | None = None


@dataclass(kw_only=True)
class RevocationReport:
    """Counts and the first :data:`MAX_KEPT` outcomes of a bulk revocation."""

    dry_run: bool
    selected: int = 0
    skipped_managed: int = 0  # selected, but managed by patwarden (no --include-managed)
    revoked: int = 0
    failed: int = 0
    revoked_examples: list[RevocationOutcome] = field(default_factory=list)
    failures: list[RevocationOutcome] = field(default_factory=list)


def _audit_record(row: InventoryRow, *, at: datetime, error: str | None) -> AuditRecord:
    pat = row.pat
    detail: list[tuple[str, str | int | bool | None]] = [
        ("organization", pat.organization),
        ("owner", pat.owner.name),
        ("owner_descriptor", pat.owner.descriptor),
        ("display_name", pat.display_name),
        ("findings", ",".join(row.kinds)),
        ("managed", pat.managed),
        ("via", "inventory revoke"),
    ]
    if error is not None:
        detail.append(("error", error))
    marker = parse_marker(pat.display_name) if pat.managed else None
    return AuditRecord(
        at=at,
        kind=AUDIT_REVOKED if error is None else AUDIT_REVOKE_FAILED,
        token_name=None if marker is None else marker.token_name,
        authorization_id=pat.authorization_id,
        detail=tuple(detail),
    )


def _reason(err: PatwardenError) -> str:
    text = str(err.message) if err.message else type(err).__name__
    return text.splitlines()[0]


class BulkRevoker:
    """Revoke selected rows in batches per organization; audit each one.

    With *dry_run* nothing is revoked or audited; the report lists what would be.
    """

    def __init__(
        self,
        *,
        revoker: Revoker,
        audit: Callable[[AuditRecord], None] | None,
        now: Callable[[], datetime],
        dry_run: bool,
        batch_size: int = 50,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"Revocation batch size must be >= 1 (got {batch_size}).")
        self._revoker = revoker
        self._audit = audit
        self._now = now
        self._batch_size = batch_size
        self._pending: dict[str, list[InventoryRow]] = {}
        self._global_seen: set[str] = set()
        self.report = RevocationReport(dry_run=dry_run)

    def add(self, row: InventoryRow) -> None:
        """Queue *row* for revocation (once per authorization id); flush full batches."""
        if row.pat.is_global:  # listed by every organization it works in: revoke it once
            key = row.pat.authorization_id.lower()
            if key in self._global_seen:
                return
            self._global_seen.add(key)
        self.report.selected += 1
        if self.report.dry_run:
            self._keep(self.report.revoked_examples, RevocationOutcome(row=row))
            return
        batch = self._pending.setdefault(row.pat.organization, [])
        batch.append(row)
        if len(batch) >= self._batch_size:
            self._flush(row.pat.organization)

    def add_all(self, rows: Iterable[InventoryRow]) -> RevocationReport:
        """Queue every row, flush, and return the report."""
        for row in rows:
            self.add(row)
        return self.finish()

    def finish(self) -> RevocationReport:
        """Revoke whatever is still queued and return the report.

        Raises:
            AuthError: the identity may not revoke (already-revoked PATs stay in the report).
        """
        for organization in list(self._pending):
            self._flush(organization)
        return self.report

    @staticmethod
    def _keep(target: list[RevocationOutcome], outcome: RevocationOutcome) -> None:
        if len(target) < MAX_KEPT:
            target.append(outcome)

    def _record(self, row: InventoryRow, *, error: str | None) -> None:
        if self._audit is not None:
            self._audit(_audit_record(row, at=self._now(), error=error))
        outcome = RevocationOutcome(row=row, error=error)
        if error is None:
            self.report.revoked += 1
            self._keep(self.report.revoked_examples, outcome)
        else:
            self.report.failed += 1
            self._keep(self.report.failures, outcome)
            logger.warning(
                "Could not revoke PAT %s of %s in %s: %s",
                row.pat.authorization_id,
                row.pat.owner.name,
                row.pat.organization,
                error,
            )

    def _flush(self, organization: str) -> None:
        batch = self._pending.pop(organization, [])
        if not batch:
            return
        ids = [row.pat.authorization_id for row in batch]
        try:
            self._revoker.revoke(organization=organization, authorization_ids=ids)
        except AuthError:
            raise
        except PatwardenError as err:
            if len(batch) == 1:
                self._record(batch[0], error=_reason(err))
                return
            for row in batch:  # find out exactly which ones fail
                self._one(organization, row)
            return
        for row in batch:
            self._record(row, error=None)

    def _one(self, organization: str, row: InventoryRow) -> None:
        try:
            self._revoker.revoke(
                organization=organization, authorization_ids=[row.pat.authorization_id]
            )
        except AuthError:
            raise
        except PatwardenError as err:
            self._record(row, error=_reason(err))
            return
        self._record(row, error=None)
