"""What is wrong with a PAT: pure rules, no I/O, "now" always injected.

Each rule yields at most one :class:`Finding` with a fixed severity and a one-line fix; the fix
differs for PATs patwarden manages (their settings live in ``patwarden.yaml``). Facts behind the
rules: contract §7 (scopes, policies, the 2026-12-01 global-PAT retirement) and §3.1 (Token Admin).
The rules and severities are documented in ``docs/inventory.md``; keep the two in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from patwarden.domain.marker import parse_marker
from patwarden.domain.scopes import FULL_ACCESS_SCOPE
from patwarden.errors import ConfigError
from patwarden.inventory.model import (
    Finding,
    FindingKind,
    InventoryRow,
    OwnerStatus,
    PatRecord,
    PatStatus,
    Severity,
)

# All global (all-organizations) PATs stop working on this date (contract §7.4, Dec 2025 blog).
GLOBAL_PAT_RETIREMENT = datetime(2026, 12, 1, tzinfo=UTC)

# Scopes that can change code, pipelines, secrets, permissions or identities, or publish what
# others install (contract §7.1). Read-only and ordinary work-item/test scopes are not listed.
BROAD_SCOPES: frozenset[str] = frozenset(
    {
        "vso.advsec_manage",
        "vso.agentpools_manage",
        "vso.auditstreams_manage",
        "vso.build_execute",
        "vso.code_full",
        "vso.code_manage",
        "vso.code_write",
        "vso.environment_manage",
        "vso.extension_manage",
        "vso.gallery_manage",
        "vso.gallery_publish",
        "vso.githubconnections_manage",
        "vso.graph_manage",
        "vso.identity_manage",
        "vso.machinegroup_manage",
        "vso.memberentitlementmanagement_write",
        "vso.packaging_manage",
        "vso.packaging_write",
        "vso.pipelineresources_manage",
        "vso.project_manage",
        "vso.release_execute",
        "vso.release_manage",
        "vso.securefiles_manage",
        "vso.security_manage",
        "vso.serviceendpoint_manage",
        "vso.taskgroups_manage",
        "vso.tokenadministration",
        "vso.tokens",
        "vso.variablegroups_manage",
        "vso.variablegroups_write",
    }
)

SEVERITIES: dict[FindingKind, Severity] = {
    FindingKind.GLOBAL: Severity.CRITICAL,
    FindingKind.FULL_ACCESS: Severity.HIGH,
    FindingKind.OWNER_DISABLED: Severity.HIGH,
    FindingKind.OWNER_REMOVED: Severity.HIGH,
    FindingKind.BROAD_SCOPE: Severity.MEDIUM,
    FindingKind.EXPIRING: Severity.MEDIUM,
    FindingKind.LONG_LIVED: Severity.LOW,
    FindingKind.EXPIRED: Severity.INFO,
}


@dataclass(frozen=True, kw_only=True)
class FindingRules:
    """The thresholds the rules use. Defaults are what ``docs/inventory.md`` documents.

    Raises:
        ConfigError: a threshold is not positive.
    """

    expiring_within: timedelta = timedelta(days=14)
    max_lifetime: timedelta = timedelta(days=90)
    broad_scopes: frozenset[str] = field(default=BROAD_SCOPES)
    global_retirement: datetime = GLOBAL_PAT_RETIREMENT
    # Managed tokens: how long before expiry each rotates (rotate_before + jitter). Their PATs
    # are not `expiring` while that rotation is still ahead.
    rotate_before: Mapping[str, timedelta] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.expiring_within <= timedelta(0) or self.max_lifetime <= timedelta(0):
            raise ConfigError(
                "The expiry window and the maximum lifetime must both be positive "
                f"(got {self.expiring_within} and {self.max_lifetime}).",
                hint="Pass e.g. --expiring-within 14 --max-lifetime 90 (days).",
            )


def _day(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d")


def _days(value: timedelta) -> int:
    return value.days


def pat_status(pat: PatRecord, *, now: datetime) -> PatStatus:
    """Return whether *pat* still works at *now*: expired beats revoked when both apply."""
    if pat.valid_to is not None and pat.valid_to <= now:
        return PatStatus.EXPIRED
    if pat.is_valid is False:
        return PatStatus.REVOKED
    return PatStatus.ACTIVE


def _finding(kind: FindingKind, pat: PatRecord, *, summary: str, fix: str) -> Finding:
    return Finding(
        kind=kind, severity=SEVERITIES[kind], summary=summary, fix=fix, managed=pat.managed
    )


def _global(pat: PatRecord, *, now: datetime, rules: FindingRules) -> Finding | None:
    if not pat.is_global:
        return None
    retire = _day(rules.global_retirement)
    if now >= rules.global_retirement:
        return Finding(
            kind=FindingKind.GLOBAL,
            severity=Severity.LOW,
            summary=f"Global PAT (all organizations); it stopped working on {retire}.",
            fix="Revoke it; anything still using it already fails.",
            managed=pat.managed,
        )
    days = (rules.global_retirement - now).days
    fix = (
        "Run `patwarden adopt` then `patwarden rotate`: the replacement is organization-scoped."
        if pat.managed
        else "Create an organization-scoped replacement (allOrgs: false), switch its consumers, "
        "then revoke this one."
    )
    return _finding(
        FindingKind.GLOBAL,
        pat,
        summary=f"Global PAT (all organizations); stops working on {retire}, in {days} day(s).",
        fix=fix,
    )


def _full_access(pat: PatRecord) -> Finding | None:
    if FULL_ACCESS_SCOPE not in pat.scopes:
        return None
    fix = (
        "List only the scopes its consumers need for this token in patwarden.yaml and rotate."
        if pat.managed
        else "Replace it with a PAT limited to the scopes its consumers need, then revoke it."
    )
    return _finding(
        FindingKind.FULL_ACCESS,
        pat,
        summary="Full access (app_token): can do anything its owner can.",
        fix=fix,
    )


def _expiring(pat: PatRecord, *, now: datetime, rules: FindingRules) -> Finding | None:
    if pat.valid_to is None or pat.valid_to - now > rules.expiring_within:
        return None
    marker = parse_marker(pat.display_name) if pat.managed else None
    lead = None if marker is None else rules.rotate_before.get(marker.token_name)
    if lead is not None and now < pat.valid_to - lead:
        return None  # patwarden rotates it before it expires
    left = pat.valid_to - now
    when = f"in {_days(left)} day(s)" if left >= timedelta(days=1) else "within a day"
    fix = (
        "patwarden rotates it before expiry; if it does not, check `patwarden status`."
        if pat.managed
        else "Rotate it before it expires, or let patwarden rotate it (`patwarden adopt`)."
    )
    return _finding(
        FindingKind.EXPIRING,
        pat,
        summary=f"Expires {_day(pat.valid_to)}, {when}.",
        fix=fix,
    )


def _long_lived(pat: PatRecord, *, rules: FindingRules) -> Finding | None:
    if pat.valid_from is None or pat.valid_to is None:
        return None
    lifetime = pat.valid_to - pat.valid_from
    if lifetime <= rules.max_lifetime:
        return None
    limit = _days(rules.max_lifetime)
    fix = (
        f"Set this token's lifetime to {limit}d or less in patwarden.yaml."
        if pat.managed
        else f"Replace it with a PAT valid {limit} days or less; consider the tenant policy "
        "'Enforce maximum PAT lifespan'."
    )
    return _finding(
        FindingKind.LONG_LIVED,
        pat,
        summary=f"Valid for {_days(lifetime)} days (more than {limit}).",
        fix=fix,
    )


def _broad_scope(pat: PatRecord, *, rules: FindingRules) -> Finding | None:
    broad = sorted(s for s in pat.scopes if s in rules.broad_scopes)
    if not broad:
        return None
    listed = ", ".join(broad)
    fix = (
        "Narrow this token's scopes in patwarden.yaml to what its consumers need, then rotate."
        if pat.managed
        else "Replace it with read-only or narrower scopes if its consumers allow, then revoke it."
    )
    return _finding(
        FindingKind.BROAD_SCOPE, pat, summary=f"Write/manage scopes: {listed}.", fix=fix
    )


_ORPHAN_FIX = "Revoke it; if automation depends on it, issue a replacement from a service account."


def _owner(pat: PatRecord) -> Finding | None:
    status = pat.owner.status
    if status is OwnerStatus.DISABLED:
        return _finding(
            FindingKind.OWNER_DISABLED,
            pat,
            summary=f"Owner {pat.owner.name} is disabled.",
            fix=_ORPHAN_FIX,
        )
    if status is OwnerStatus.REMOVED:
        return _finding(
            FindingKind.OWNER_REMOVED,
            pat,
            summary=f"Owner {pat.owner.name} was removed from the directory.",
            fix=_ORPHAN_FIX,
        )
    return None


def _expired(pat: PatRecord) -> Finding:
    expired_on = _day(pat.valid_to) if pat.valid_to else "an unknown date"
    return _finding(
        FindingKind.EXPIRED,
        pat,
        summary=f"Expired on {expired_on} but still listed.",
        fix="Nothing can use it any more; revoke it to keep the inventory clean.",
    )


def evaluate(pat: PatRecord, *, now: datetime, rules: FindingRules) -> InventoryRow:
    """Return *pat* with its status and every finding, worst first.

    A revoked PAT has no findings; an expired one has only "expired" (nothing else about it can
    hurt any more); an active one is checked against every other rule.

    Raises:
        ValueError: *now* is naive (an expiry comparison would be ambiguous).
    """
    if now.tzinfo is None:
        raise ValueError("evaluate() needs an aware 'now'")
    status = pat_status(pat, now=now)
    if status is PatStatus.REVOKED:
        return InventoryRow(pat=pat, status=status, findings=())
    if status is PatStatus.EXPIRED:
        return InventoryRow(pat=pat, status=status, findings=(_expired(pat),))
    found = [
        _global(pat, now=now, rules=rules),
        _full_access(pat),
        _owner(pat),
        _broad_scope(pat, rules=rules),
        _expiring(pat, now=now, rules=rules),
        _long_lived(pat, rules=rules),
    ]
    findings = sorted((f for f in found if f is not None), key=lambda f: -f.severity)
    return InventoryRow(pat=pat, status=status, findings=tuple(findings))
