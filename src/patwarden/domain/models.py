"""Domain values the rotation core works with: what to rotate, what was issued, what is known.

Pure: frozen dataclasses, no I/O. Nothing here holds a secret except :class:`CreatedPat`, which
keeps the value in a :class:`~patwarden.secret.Secret` and is never persisted.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from patwarden.secret import Secret

if TYPE_CHECKING:
    from patwarden.config.hooks import HookSpec

__all__ = [
    "AuditRecord",
    "CreatedPat",
    "IssuedPat",
    "JournalEntry",
    "ManagedTokenState",
    "SinkEntry",
    "SinkRecord",
    "TokenSpec",
]


class SinkEntry(Protocol):
    """One configured sink, as its kind's spec model validated it.

    :class:`patwarden.plugins.SinkSpec` (the base of every kind's model) implements it; the
    registry (:func:`patwarden.sinks.registry.build_sink`) turns it into a live sink.
    """

    @property
    def kind(self) -> str:
        """The sink kind, e.g. ``key_vault``: the name its entry point is registered under."""
        ...


@dataclass(frozen=True, kw_only=True)
class TokenSpec:
    """One managed token as configured: what to issue, when to rotate, where to write it.

    ``sinks`` are the validated sink entries (the engine asks a resolver for the live
    :class:`~patwarden.rotation.ports.Sink` objects); ``hooks`` are the validated ``on_rotate``
    entries, run after a promotion (:mod:`patwarden.hooks.runner`).
    """

    name: str
    organization: str
    scopes: tuple[str, ...]
    lifetime: timedelta
    rotate_before: timedelta
    revoke_after: timedelta
    jitter: timedelta = timedelta(0)
    sinks: tuple[SinkEntry, ...] = ()
    hooks: tuple[HookSpec, ...] = ()


@dataclass(frozen=True, kw_only=True)
class IssuedPat:
    """A PAT as Azure DevOps reports it (never its value). ``valid_to`` is what was *issued*."""

    authorization_id: str
    display_name: str
    valid_from: datetime
    valid_to: datetime
    scopes: tuple[str, ...] = ()

    @property
    def lifetime(self) -> timedelta:
        """Return the effective lifetime: issued ``valid_to`` minus ``valid_from``."""
        return self.valid_to - self.valid_from


@dataclass(frozen=True, kw_only=True)
class CreatedPat:
    """A PAT just created: its metadata and its value, which exists only in memory."""

    pat: IssuedPat
    secret: Secret = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class SinkRecord:
    """Which PAT one sink serves, and the sink's version reference for it (no secret)."""

    sink: str
    authorization_id: str | None
    ref: str | None


@dataclass(frozen=True, kw_only=True)
class ManagedTokenState:
    """What patwarden knows about one managed token between runs.

    ``current`` is the PAT every sink should serve; ``previous`` is the one it replaced (kept valid
    until ``revoke_at``); ``sinks`` says which sink holds which version as last written or seen.
    """

    token_name: str
    organization: str
    current: IssuedPat | None = None
    previous: IssuedPat | None = None
    revoke_at: datetime | None = None
    sinks: tuple[SinkRecord, ...] = ()
    last_operation_id: str | None = None
    updated_at: datetime | None = None

    def sink(self, key: str) -> SinkRecord | None:
        """Return the record for sink ``key``, or ``None`` if it was never written."""
        return next((record for record in self.sinks if record.sink == key), None)

    def with_sink(self, record: SinkRecord) -> ManagedTokenState:
        """Return a copy with ``record`` replacing any record for the same sink."""
        others = tuple(r for r in self.sinks if r.sink != record.sink)
        return replace(self, sinks=(*others, record))

    def served_ids(self) -> frozenset[str]:
        """Return the authorization ids some sink is recorded as serving."""
        return frozenset(r.authorization_id for r in self.sinks if r.authorization_id)

    def referenced_ids(self) -> frozenset[str]:
        """Return every authorization id this state still refers to (current, previous, sinks)."""
        ids = set(self.served_ids())
        ids.update(p.authorization_id for p in (self.current, self.previous) if p is not None)
        return frozenset(ids)


@dataclass(frozen=True, kw_only=True)
class JournalEntry:
    """One step an operation passed, as journaled (never a secret)."""

    seq: int
    operation_id: str
    token_name: str
    step: str
    outcome: str | None
    at: datetime
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class AuditRecord:
    """One append-only audit event: what happened to which token and PAT (never a secret).

    ``detail`` holds extra JSON-serialisable facts (sink names, deadlines, reasons).
    """

    at: datetime
    kind: str
    token_name: str | None = None
    operation_id: str | None = None
    authorization_id: str | None = None
    detail: tuple[tuple[str, str | int | bool | None], ...] = ()
    seq: int | None = None

    def to_json(self) -> dict[str, object]:
        """Return a JSON-serialisable dict (timestamps as ISO 8601)."""
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "kind": self.kind,
            "token": self.token_name,
            "operation_id": self.operation_id,
            "authorization_id": self.authorization_id,
            "detail": dict(self.detail),
        }
