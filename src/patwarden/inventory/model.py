"""The values an inventory is made of: owners, PATs, findings and their severities.

Everything here is a frozen value with no I/O. A :class:`PatRecord` never carries a PAT's value
(the Token Admin API never returns one, contract §3.1); it is safe to log, render and export.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from patwarden.errors import ConfigError


class Severity(enum.IntEnum):
    """How urgent a finding is; ordered, so ``max()`` and ``>=`` work."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        """The lower-case name used in every output (``"high"``)."""
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> Severity:
        """Return the severity named *value* (case-insensitive).

        Raises:
            ConfigError: *value* names no severity.
        """
        try:
            return cls[value.strip().upper()]
        except KeyError:
            names = ", ".join(s.label for s in cls)
            raise ConfigError(
                f"Unknown severity {value!r}.", hint=f"Use one of: {names}."
            ) from None


class FindingKind(enum.StrEnum):
    """What is wrong with a PAT; values are the names used on the command line and in exports."""

    GLOBAL = "global"
    FULL_ACCESS = "full-access"
    EXPIRING = "expiring"
    LONG_LIVED = "long-lived"
    BROAD_SCOPE = "broad-scope"
    OWNER_DISABLED = "owner-disabled"
    OWNER_REMOVED = "owner-removed"
    EXPIRED = "expired"

    @classmethod
    def parse(cls, value: str) -> FindingKind:
        """Return the kind named *value* (case-insensitive, ``_`` accepted for ``-``).

        Raises:
            ConfigError: *value* names no finding.
        """
        try:
            return cls(value.strip().lower().replace("_", "-"))
        except ValueError:
            names = ", ".join(k.value for k in cls)
            raise ConfigError(f"Unknown finding {value!r}.", hint=f"Use one of: {names}.") from None


class OwnerStatus(enum.StrEnum):
    """Whether the PAT's owner can still sign in to the organization."""

    ACTIVE = "active"
    DISABLED = "disabled"
    REMOVED = "removed"
    UNKNOWN = "unknown"


class PatStatus(enum.StrEnum):
    """Whether a listed PAT still works."""

    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True, kw_only=True)
class Owner:
    """A user of an organization, as Graph describes them (``descriptor`` is the stable key)."""

    descriptor: str
    principal_name: str | None = None
    display_name: str | None = None
    status: OwnerStatus = OwnerStatus.ACTIVE

    @property
    def name(self) -> str:
        """The best human-readable name: principal name, display name, then descriptor."""
        return self.principal_name or self.display_name or self.descriptor


@dataclass(frozen=True, kw_only=True)
class PatRecord:
    """One PAT of one owner in one organization, as Token Admin lists it (never its value)."""

    organization: str
    owner: Owner
    authorization_id: str
    display_name: str
    scopes: tuple[str, ...]
    valid_from: datetime | None
    valid_to: datetime | None
    # True for a PAT valid in all organizations (``targetAccounts`` null, contract §1.4).
    is_global: bool
    # Token Admin's ``isValid``; False for a revoked (or expired) PAT, None when not sent.
    is_valid: bool | None = None
    # True when patwarden manages this PAT (display-name marker or state store).
    managed: bool = False


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One problem with one PAT: what it is, how bad, and the one-line fix."""

    kind: FindingKind
    severity: Severity
    summary: str
    fix: str
    managed: bool = False


@dataclass(frozen=True, kw_only=True)
class InventoryRow:
    """A PAT, its status and everything found wrong with it (the unit every output renders)."""

    pat: PatRecord
    status: PatStatus
    findings: tuple[Finding, ...]

    @property
    def max_severity(self) -> Severity | None:
        """The worst severity among the findings, or None when there are none."""
        return max((f.severity for f in self.findings), default=None)

    @property
    def kinds(self) -> tuple[FindingKind, ...]:
        """The kinds of the findings, in the order they were found."""
        return tuple(f.kind for f in self.findings)

    def has_any(self, kinds: frozenset[FindingKind]) -> bool:
        """True when at least one finding is of one of *kinds*."""
        return any(f.kind in kinds for f in self.findings)
