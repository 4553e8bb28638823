"""The journal record of one rotation: its step, what it created, and each sink's progress.

Pure values; :mod:`patwarden.domain.rotation` moves an :class:`Operation` from step to step.
Nothing here holds a secret.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from patwarden.domain.models import IssuedPat, SinkRecord

__all__ = ["HOLDS_NEW", "Operation", "Outcome", "SinkProgress", "SinkStatus", "Step"]


class Step(enum.StrEnum):
    """Where one rotation operation stands; the journal records every step it passes."""

    PLANNED = "planned"  # due; operation id and display name chosen; nothing created yet
    CREATING = "creating"  # create intent journaled; a PAT carrying the marker may now exist
    CREATED = "created"  # the new PAT exists and its authorization id is journaled
    DISTRIBUTING = "distributing"  # writing the new value to the sinks, one journaled write each
    DISTRIBUTED = "distributed"  # every sink holds the new PAT
    VERIFYING = "verifying"  # proving the new PAT works and reading sinks back
    VERIFIED = "verified"  # the new PAT works and every readable sink returned it
    PROMOTED = "promoted"  # the new PAT is (being made) current in the token state
    REVOKE_PENDING = "revoke_pending"  # waiting for revoke_after before revoking the previous PAT
    REVOKED = "revoked"  # previous PAT revoked and audited; tagging the sink versions that held it
    DONE = "done"  # finished: the previous PAT is revoked and tagged, or there was none
    ROLLING_BACK = "rolling_back"  # restoring sinks and revoking the new PAT after a failure
    FAILED = "failed"  # finished without rotating; ``outcome`` and ``reason`` say what is left

    @property
    def is_terminal(self) -> bool:
        """Return whether no further action belongs to this operation."""
        return self in (Step.DONE, Step.FAILED)

    @property
    def is_tail(self) -> bool:
        """Return whether the rotation stands and only its tail is left (revoke, tag)."""
        return self in (Step.REVOKE_PENDING, Step.REVOKED)


class SinkStatus(enum.StrEnum):
    """What one sink holds, as far as this operation knows."""

    PENDING = "pending"  # not touched yet: serves whatever it served before
    WRITING = "writing"  # previous version captured, write started: may hold either PAT
    WRITTEN = "written"  # holds the new PAT
    CONFIRMED = "confirmed"  # holds the new PAT and read it back (or cannot be read back)
    RESTORED = "restored"  # serves its previous version again after a rollback
    STUCK = "stuck"  # restore failed: still serves the new PAT, which must stay valid


HOLDS_NEW = (SinkStatus.WRITING, SinkStatus.WRITTEN, SinkStatus.CONFIRMED, SinkStatus.STUCK)


class Outcome(enum.StrEnum):
    """How a finished operation ended."""

    ROTATED = "rotated"  # new PAT current and the previous revoked (or none)
    ROLLED_BACK = "rolled_back"  # sinks restored, new PAT revoked, previous PAT still current
    STRANDED = "stranded"  # rolled back, but some sink still serves the new PAT (kept valid)
    FAILED = "failed"  # nothing was distributed (create failed or was lost)


@dataclass(frozen=True, kw_only=True)
class SinkProgress:
    """One sink's part in an operation: the version it served before, and what we wrote."""

    sink: str
    status: SinkStatus = SinkStatus.PENDING
    previous: SinkRecord | None = None
    written: SinkRecord | None = None
    read_back: bool | None = None  # True matched; None could not read back


@dataclass(frozen=True, kw_only=True)
class Operation:
    """One rotation of one token, as journaled. Never holds a secret."""

    operation_id: str
    token_name: str
    organization: str
    display_name: str
    scopes: tuple[str, ...]
    requested_valid_to: datetime
    revoke_after: timedelta
    started_at: datetime
    step: Step = Step.PLANNED
    previous: IssuedPat | None = None
    new: IssuedPat | None = None
    sinks: tuple[SinkProgress, ...] = ()
    pat_verified: bool = False
    new_revoked: bool = False
    revoke_at: datetime | None = None
    revoked_at: datetime | None = None  # when the previous PAT was revoked (the tags' stamp)
    untagged: tuple[str, ...] = ()  # sinks still to tag the revoked previous PAT's versions in
    outcome: Outcome | None = None
    reason: str | None = None
    note: str | None = None

    def sink(self, key: str) -> SinkProgress:
        """Return the progress of sink ``key``.

        Raises:
            KeyError: the operation has no such sink.
        """
        for progress in self.sinks:
            if progress.sink == key:
                return progress
        raise KeyError(key)

    def with_sink(self, progress: SinkProgress) -> Operation:
        """Return a copy with ``progress`` replacing the sink of the same key (order kept)."""
        sinks = tuple(progress if p.sink == progress.sink else p for p in self.sinks)
        return replace(self, sinks=sinks)

    def noted(self, note: str) -> Operation:
        """Return a copy with ``note`` appended to the operation's notes."""
        return replace(self, note=f"{self.note}; {note}" if self.note else note)

    def sinks_serving_new(self) -> tuple[str, ...]:
        """Return the sinks that hold, or may hold, the new PAT."""
        return tuple(p.sink for p in self.sinks if p.status in HOLDS_NEW)
