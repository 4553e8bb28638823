"""Is a token due? Due = issued ``validTo`` - ``rotate_before`` - a deterministic jitter.

Pure: the caller passes ``now``. The jitter offset comes from a hash of the token name, so every
run (and every runner) agrees on the same due time, and tokens configured alike spread out.
Jitter only moves the due time *earlier*, never past ``validTo - rotate_before``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from patwarden.domain.marker import is_valid_token_name
from patwarden.domain.models import IssuedPat, TokenSpec
from patwarden.errors import ConfigError

__all__ = [
    "CLAMP_TOLERANCE",
    "ScheduleDecision",
    "ScheduleError",
    "check_spec",
    "decide",
    "is_clamped",
    "jitter_offset",
]

# Azure DevOps rounds validTo (SQL datetime); a PAT counts as clamped only if it is shorter than
# requested by more than this.
CLAMP_TOLERANCE = timedelta(minutes=5)
_DOCS = "https://github.com/patwarden/patwarden/blob/main/docs/rotation.md#schedule"


class ScheduleError(ConfigError):
    """A token's schedule cannot work (for example it would rotate on every run)."""


@dataclass(frozen=True, kw_only=True)
class ScheduleDecision:
    """The answer to "is this token due?", with what a person needs to trust it."""

    is_due: bool
    due_at: datetime | None
    reason: str
    is_clamped: bool = False
    effective_lifetime: timedelta | None = None
    would_loop: bool = False

    @property
    def problem(self) -> str | None:
        """Return why the schedule is refused, or ``None`` when it can work."""
        return self.reason if self.would_loop else None


def jitter_offset(*, token_name: str, jitter: timedelta) -> timedelta:
    """Return a deterministic offset in ``[0, jitter]`` (whole seconds) derived from the name."""
    span = int(jitter.total_seconds())
    if span <= 0:
        return timedelta(0)
    digest = hashlib.sha256(token_name.encode()).digest()
    return timedelta(seconds=int.from_bytes(digest[:8], "big") % (span + 1))


def _lead(spec: TokenSpec) -> timedelta:
    return spec.rotate_before + spec.jitter


def check_spec(spec: TokenSpec) -> None:
    """Refuse a token whose settings cannot work, before anything is created.

    Raises:
        ScheduleError: the name cannot be used in a marker, a duration is not positive, or
            ``rotate_before`` + ``jitter`` is not shorter than ``lifetime`` (the token would be
            due again as soon as it is issued).
    """
    where = f"tokens.{spec.name}"
    if not is_valid_token_name(spec.name):
        raise ScheduleError(
            f"Token name {spec.name!r} cannot be carried in a PAT display name.",
            hint="Use 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit.",
        )
    if spec.lifetime <= timedelta(0):
        raise ScheduleError(f"{where}.lifetime must be positive.", hint="Set e.g. lifetime: 30d.")
    if spec.rotate_before <= timedelta(0) or spec.jitter < timedelta(0):
        raise ScheduleError(
            f"{where}.rotate_before must be positive and jitter must not be negative.",
            hint="Set e.g. rotate_before: 7d and jitter: 1h.",
        )
    if spec.revoke_after < timedelta(0):
        raise ScheduleError(f"{where}.revoke_after must not be negative.", hint="Use 0s or more.")
    if _lead(spec) >= spec.lifetime:
        raise ScheduleError(
            f"{where}: rotate_before ({spec.rotate_before}) + jitter ({spec.jitter}) is not "
            f"shorter than lifetime ({spec.lifetime}); every new PAT would be due at once.",
            hint="Lower rotate_before/jitter or raise lifetime.",
            docs=_DOCS,
        )


def is_clamped(*, issued: IssuedPat, requested_lifetime: timedelta) -> bool:
    """Return whether Azure DevOps issued a shorter lifetime than requested (policy clamping)."""
    return issued.lifetime < requested_lifetime - CLAMP_TOLERANCE


def decide(*, spec: TokenSpec, issued: IssuedPat | None, now: datetime) -> ScheduleDecision:
    """Decide whether ``spec`` is due at ``now`` given the PAT it currently serves.

    Uses the *issued* ``valid_to``. If policy clamped the lifetime so far that the rotation lead
    is not shorter than it, the decision is *not due* with ``would_loop`` set: rotating would only
    produce another PAT that is due at once.
    """
    if issued is None:
        return ScheduleDecision(is_due=True, due_at=None, reason="no PAT issued yet")
    lifetime = issued.lifetime
    clamped = is_clamped(issued=issued, requested_lifetime=spec.lifetime)
    due_at = (
        issued.valid_to
        - spec.rotate_before
        - jitter_offset(token_name=spec.name, jitter=spec.jitter)
    )
    # Within the rounding tolerance counts as "not longer": a policy that clamps the lifetime to
    # exactly rotate_before issues a PAT a few milliseconds longer, which is still due at once.
    if _lead(spec) >= lifetime - CLAMP_TOLERANCE:
        cause = "clamped by an Azure DevOps lifespan policy" if clamped else "as issued"
        return ScheduleDecision(
            is_due=False,
            due_at=due_at,
            reason=(
                f"refusing to rotate {spec.name}: the issued lifetime is {lifetime} ({cause}), "
                f"not longer than rotate_before + jitter ({_lead(spec)}), so every rotation "
                f"would be due at once; the PAT still expires at {issued.valid_to.isoformat()}. "
                "Lower rotate_before below the policy's maximum lifespan."
            ),
            is_clamped=clamped,
            effective_lifetime=lifetime,
            would_loop=True,
        )
    if now >= due_at:
        reason = f"due since {due_at.isoformat()} (expires {issued.valid_to.isoformat()})"
    else:
        reason = f"not due until {due_at.isoformat()}"
    if clamped:
        reason += f"; lifetime clamped by policy to {lifetime}"
    return ScheduleDecision(
        is_due=now >= due_at,
        due_at=due_at,
        reason=reason,
        is_clamped=clamped,
        effective_lifetime=lifetime,
    )
