"""The messages of the rotation state machine: actions the engine performs, events they produce.

An action is what the engine must do after persisting a step; the event is what came of it.
Neither ever carries a secret: the new PAT's value stays in the engine's memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from patwarden.domain.models import IssuedPat, SinkRecord

# --- actions: what the engine must do next -------------------------------------------------------


@dataclass(frozen=True)
class CreatePat:
    """Create the PAT named ``Operation.display_name`` (``allOrgs: false``, configured scopes)."""


@dataclass(frozen=True)
class FindMarked:
    """Look for a PAT carrying this operation's display name (the create answer was lost)."""


@dataclass(frozen=True)
class Proceed:
    """Nothing to do outside: the checkpoint is persisted; continue with :class:`Resume`."""


@dataclass(frozen=True)
class RecoverSecret:
    """Get the new PAT's value back by reading it from one of ``sinks`` that holds it."""

    sinks: tuple[str, ...]


@dataclass(frozen=True)
class CapturePrevious:
    """Record the version ``sink`` serves now, so it can be restored later."""

    sink: str


@dataclass(frozen=True)
class WriteSink:
    """Write the new PAT to ``sink`` (idempotent: writing the same value twice is harmless)."""

    sink: str


@dataclass(frozen=True)
class VerifyPat:
    """Prove the new PAT works with a cheap Azure DevOps call inside its scopes."""


@dataclass(frozen=True)
class ReadBack:
    """Read ``sink`` back and compare it with the new PAT."""

    sink: str


@dataclass(frozen=True)
class PromoteToken:
    """Make the new PAT current in the token state (idempotent)."""


@dataclass(frozen=True)
class RevokePat:
    """Revoke ``authorization_id`` unless a sink still serves it (unknown id counts as revoked)."""

    authorization_id: str


@dataclass(frozen=True)
class TagRevoked:
    """Tag the versions of ``sink`` that held the revoked ``authorization_id`` (idempotent).

    Only sinks that keep revocation tags (Key Vault's ``revokedAt``) are asked; ``at`` is the
    journaled time of the revocation, so a repeated tag after a crash carries the same stamp.
    """

    sink: str
    authorization_id: str
    at: datetime


@dataclass(frozen=True)
class RestoreSink:
    """Make ``sink`` serve its previous version again (best effort)."""

    sink: str


@dataclass(frozen=True)
class Wait:
    """Stop for now: the previous PAT is revoked on a later run, once ``revoke_at`` has passed."""


Action = (
    CreatePat
    | FindMarked
    | Proceed
    | RecoverSecret
    | CapturePrevious
    | WriteSink
    | VerifyPat
    | ReadBack
    | PromoteToken
    | RevokePat
    | TagRevoked
    | RestoreSink
    | Wait
)


# --- events: what an action produced ----------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Resume:
    """Continue from the persisted operation (after a checkpoint, a restart, or on a later run)."""

    at: datetime
    has_secret: bool


@dataclass(frozen=True, kw_only=True)
class PatCreated:
    """The create call returned the new PAT (its value stays with the engine)."""

    pat: IssuedPat


@dataclass(frozen=True, kw_only=True)
class CreateFailed:
    """Azure DevOps refused the create; nothing was created."""

    reason: str


@dataclass(frozen=True, kw_only=True)
class CreateUnknown:
    """The create answer was lost; the PAT may or may not exist."""

    reason: str


@dataclass(frozen=True, kw_only=True)
class MarkedFound:
    """A PAT with this operation's marker exists; its value is lost."""

    pat: IssuedPat


@dataclass(frozen=True, kw_only=True)
class MarkedMissing:
    """No PAT carries this operation's marker: the create never happened."""


@dataclass(frozen=True, kw_only=True)
class SecretRecovered:
    """A sink gave back the new PAT's value; it is in memory again."""

    sink: str


@dataclass(frozen=True, kw_only=True)
class SecretLost:
    """No sink could give back the new PAT's value."""

    reason: str


@dataclass(frozen=True, kw_only=True)
class PreviousCaptured:
    """``sink`` served ``version`` before the write (``None``: it was empty)."""

    sink: str
    version: SinkRecord | None


@dataclass(frozen=True, kw_only=True)
class SinkWritten:
    """``sink`` now serves the new PAT as ``version``."""

    sink: str
    version: SinkRecord


@dataclass(frozen=True, kw_only=True)
class SinkFailed:
    """Capturing, writing or reading ``sink`` failed."""

    sink: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class PatVerified:
    """The new PAT authenticated against Azure DevOps."""


@dataclass(frozen=True, kw_only=True)
class VerifyFailed:
    """The new PAT did not work."""

    reason: str


@dataclass(frozen=True, kw_only=True)
class ReadBackDone:
    """``sink`` was read back: ``matched`` True, or None when the sink cannot be read back."""

    sink: str
    matched: bool | None


@dataclass(frozen=True, kw_only=True)
class TokenPromoted:
    """The token state now names the new PAT current."""

    at: datetime


@dataclass(frozen=True, kw_only=True)
class PatRevoked:
    """``authorization_id`` is revoked (or was already gone) at ``at``.

    ``tag_in`` names the sinks that keep revocation tags (the engine knows their abilities; the
    machine journals which of them still have to tag the revoked PAT's versions).
    """

    authorization_id: str
    at: datetime
    tag_in: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RevokeFailed:
    """Revoking ``authorization_id`` failed or was refused because a sink still serves it."""

    authorization_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class RevocationTagged:
    """``sink`` tagged every version that held the revoked PAT (or had none to tag)."""

    sink: str


@dataclass(frozen=True, kw_only=True)
class TagFailed:
    """``sink`` could not tag the revoked PAT's versions (bookkeeping: reported, not retried)."""

    sink: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class SinkRestored:
    """``sink`` serves its previous version again."""

    sink: str


@dataclass(frozen=True, kw_only=True)
class RestoreFailed:
    """``sink`` could not be restored and still serves the new PAT."""

    sink: str
    reason: str


Event = (
    Resume
    | PatCreated
    | CreateFailed
    | CreateUnknown
    | MarkedFound
    | MarkedMissing
    | SecretRecovered
    | SecretLost
    | PreviousCaptured
    | SinkWritten
    | SinkFailed
    | PatVerified
    | VerifyFailed
    | ReadBackDone
    | TokenPromoted
    | PatRevoked
    | RevokeFailed
    | RevocationTagged
    | TagFailed
    | SinkRestored
    | RestoreFailed
)
