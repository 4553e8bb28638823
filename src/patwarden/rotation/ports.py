"""Protocols the engine needs: sinks, the PAT issuer, the state store and a clock.

Adapters implement these; the engine and its tests depend only on them. Nothing here does I/O.
Secrets cross these boundaries only as :class:`patwarden.secret.Secret`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from patwarden.clock import Clock  # re-exported: the engine's port for time
from patwarden.domain.models import (
    AuditRecord,
    CreatedPat,
    IssuedPat,
    JournalEntry,
    ManagedTokenState,
)
from patwarden.domain.operation import Operation
from patwarden.errors import AzureDevOpsError, PatwardenError, StateError
from patwarden.secret import Secret

__all__ = [
    "Clock",
    "FreshListing",
    "HookFailed",
    "IssueOutcomeUnknown",
    "Leadership",
    "PatIssuer",
    "Preflight",
    "RevocationTagging",
    "Sink",
    "SinkVersion",
    "SinkWriteMeta",
    "StateFenced",
    "StateLocked",
    "StateStore",
]


@dataclass(frozen=True, kw_only=True)
class SinkWriteMeta:
    """What a sink records beside the value it stores (tags, a description). Never a secret."""

    token_name: str
    authorization_id: str
    operation_id: str
    valid_to: datetime


@dataclass(frozen=True, kw_only=True)
class SinkVersion:
    """One version of the value a sink holds.

    ``ref`` is opaque to the engine (a Key Vault secret version id, a variable group revision,
    a file digest, …); only the sink that produced it interprets it. ``authorization_id`` is the
    PAT the sink says this version holds, read from the sink's own metadata when possible
    (``None`` if unknown).
    """

    ref: str
    authorization_id: str | None = None


@runtime_checkable
class Sink(Protocol):
    """A place a PAT value is written to for its consumers (Key Vault secret, variable group, …)."""

    def write(self, secret: Secret, meta: SinkWriteMeta) -> SinkVersion:
        """Store ``secret`` as the sink's current value, tagged with ``meta``; return its version.

        Raises:
            SinkError: the value could not be written (the previous value may or may not remain).
        """
        ...

    def read_back(self) -> Secret | None:
        """Return the sink's current value, or ``None`` if this sink cannot be read back.

        Raises:
            SinkError: the sink can be read back in principle but the read failed.
        """
        ...

    def describe(self) -> str:
        """Return a one-line, secret-free description (``key_vault ops-kv/flux-git-pat``)."""
        ...

    def restore(self, previous: SinkVersion | None) -> bool:
        """Best effort: make ``previous`` the current value again (``None``: remove what we wrote).

        Returns ``True`` when the sink serves ``previous`` again, ``False`` when it could not.
        Must not raise for expected failures; the engine reports ``False`` as "sink holds the new
        version".
        """
        ...

    def current_version(self) -> SinkVersion | None:
        """Return the version the sink serves now (``None``: empty, or the sink keeps no versions).

        Raises:
            SinkError: the sink could not be read.
        """
        ...


@runtime_checkable
class RevocationTagging(Protocol):
    """An optional sink ability: mark the stored versions of a revoked PAT (Key Vault tags them
    ``revokedAt``). The engine tags through it after every revocation it journals."""

    def mark_revoked(self, authorization_id: str, *, at: datetime | None = None) -> int:
        """Tag every version holding ``authorization_id`` as revoked at ``at``; return how many.

        Idempotent: versions already tagged are left alone, so a repeat after a crash is harmless.

        Raises:
            SinkError: the sink could not be listed or updated (reported, never fails a run).
        """
        ...


@runtime_checkable
class Preflight(Protocol):
    """An optional sink ability: check, before a PAT is minted, that the sink can take it (its
    target exists and the writer may write it). The engine preflights every sink that has it
    and mints nothing when one fails; ``plan --preflight`` shows the checks."""

    def preflight(self) -> None:
        """Check the target exists and the writer may write it; change nothing.

        Raises:
            SinkError: the target is missing or cannot be written (the message names the fix).
        """
        ...


@runtime_checkable
class FreshListing(Protocol):
    """An optional issuer ability: list the marked PATs now, bypassing a listing shared by a run
    (:class:`~patwarden.rotation.fleet.SharedListingIssuer`). The engine asks for it only when
    the shared listing may be stale: the current PAT is missing from it, or extra PATs are."""

    def list_marked_fresh(self, *, organization: str) -> Sequence[IssuedPat]:
        """Return every active marked PAT of ``organization`` as Azure DevOps lists it now.

        Raises:
            AzureDevOpsError: the listing failed.
        """
        ...


class IssueOutcomeUnknown(AzureDevOpsError):
    """A PAT create may have succeeded although its answer was lost; look it up by marker."""


class HookFailed(PatwardenError):
    """A promotion hook failed after a rotation (which stands); ``notes`` says how each hook did.

    The engine audits it as ``hook_failed`` and keeps the notes on the token's outcome.
    """

    def __init__(self, message: str, *, notes: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.notes = tuple(notes)


class StateLocked(StateError):
    """Another patwarden run holds the lock on this token; it was left to that run."""


class StateFenced(StateError):
    """A write was refused: another process took over the state (a newer leader epoch, or the
    state's lease). Nothing was written; the process that took over carries on."""


@runtime_checkable
class Leadership(Protocol):
    """Who of several ``serve`` replicas on one state acts (docs/state.md, "Replicas").

    ``serve`` calls :meth:`try_acquire` before every pass and acts only when it returns ``True``;
    the implementation keeps the lease renewed in between. ``epoch`` grows with every takeover:
    a state store fenced by this leadership refuses writes (:class:`StateFenced`) once the epoch
    it holds is no longer the current one, so a paused old leader can never act after losing.
    """

    @property
    def is_leader(self) -> bool:
        """Whether this process leads now (as far as it knows)."""
        ...

    @property
    def epoch(self) -> int | None:
        """The epoch this process leads in, or ``None`` when it does not lead."""
        ...

    @property
    def retry_interval(self) -> timedelta:
        """How long a standby waits between attempts (short enough to fail over in time)."""
        ...

    def try_acquire(self, *, now: datetime) -> bool:
        """Take leadership if it is free or its lease lapsed (or renew it); return whether this
        process leads now."""
        ...

    def describe_holder(self) -> str:
        """Who leads, secret-free (``pid 1234 on host-a since …``)."""
        ...

    def release(self) -> None:
        """Give up leadership (a standby may take over at once)."""
        ...


class PatIssuer(Protocol):
    """The Azure DevOps side of rotation: create, look up, revoke and verify PATs of one user."""

    def create(
        self, *, organization: str, display_name: str, scopes: Sequence[str], valid_to: datetime
    ) -> CreatedPat:
        """Create a PAT bound to ``organization`` only (``allOrgs: false``) and return it.

        Raises:
            IssueOutcomeUnknown: the request was sent but its answer was lost.
            AzureDevOpsError: Azure DevOps refused the create (policy, scope, permissions).
            AuthError: the rotator identity could not get a token.
        """
        ...

    def get(self, *, organization: str, authorization_id: str) -> IssuedPat | None:
        """Return the PAT ``authorization_id``, or ``None`` if it does not exist (any more).

        Raises:
            AzureDevOpsError: the lookup failed.
        """
        ...

    def list_marked(self, *, organization: str) -> Sequence[IssuedPat]:
        """Return every active PAT whose display name carries patwarden's marker.

        Raises:
            AzureDevOpsError: the listing failed.
        """
        ...

    def revoke(self, *, organization: str, authorization_id: str) -> None:
        """Revoke ``authorization_id``; a PAT that is already gone counts as revoked.

        Raises:
            AzureDevOpsError: the revoke failed; the PAT may still be valid.
        """
        ...

    def verify(self, *, organization: str, secret: Secret, scopes: Sequence[str]) -> None:
        """Prove ``secret`` authenticates against ``organization`` with a cheap call.

        Raises:
            AzureDevOpsError: the PAT was rejected, or the check could not be made.
        """
        ...


class StateStore(Protocol):
    """Where patwarden keeps token state, the rotation journal and the audit log. No secrets."""

    def load_token(self, name: str) -> ManagedTokenState | None:
        """Return the state of token ``name``, or ``None`` if it was never managed."""
        ...

    def tokens(self) -> Sequence[ManagedTokenState]:
        """Return the state of every managed token, by name."""
        ...

    def save_token(self, state: ManagedTokenState, *, audit: Sequence[AuditRecord] = ()) -> None:
        """Replace the state of ``state.token_name`` and append ``audit``, in one transaction."""
        ...

    def load_operation(self, operation_id: str) -> Operation | None:
        """Return operation ``operation_id`` as last journaled, or ``None``."""
        ...

    def operations(self, token_name: str, *, unfinished: bool = False) -> Sequence[Operation]:
        """Return the operations of ``token_name``, oldest first (only unfinished ones if asked)."""
        ...

    def record(
        self,
        op: Operation,
        *,
        token: ManagedTokenState | None = None,
        audit: Sequence[AuditRecord] = (),
    ) -> None:
        """Persist ``op`` and journal its step (with ``token`` and ``audit``) in one transaction."""
        ...

    def journal(self, operation_id: str) -> Sequence[JournalEntry]:
        """Return the journaled steps of ``operation_id`` in order."""
        ...

    def append_audit(self, record: AuditRecord) -> None:
        """Append one record to the audit log."""
        ...

    def audit(
        self,
        since: datetime | None = None,
        *,
        kinds: Collection[str] = (),
        tokens: Collection[str] = (),
        limit: int | None = None,
        newest_first: bool = False,
    ) -> Iterator[AuditRecord]:
        """Yield audit records at or after ``since`` (all if ``None``) whose kind is one of
        ``kinds`` and whose token one of ``tokens`` (either: any if empty), oldest first (newest
        first if asked), at most ``limit`` of them.

        A bounded, indexed read: it costs what it returns, not the size of the log (a run reads
        the audit only this way; docs/performance.md#history-independent-runs).
        """
        ...

    def token_lock(self, name: str, *, timeout: float) -> AbstractContextManager[None]:
        """Return a context manager holding the cross-process lock on token ``name``.

        Raises:
            StateLocked: another run held the lock for longer than ``timeout`` seconds.
        """
        ...
