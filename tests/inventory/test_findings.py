"""The finding rules: table-driven over every rule, its boundaries and the managed variants."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from patwarden.errors import ConfigError
from patwarden.inventory.findings import (
    BROAD_SCOPES,
    GLOBAL_PAT_RETIREMENT,
    SEVERITIES,
    FindingRules,
    evaluate,
    pat_status,
)
from patwarden.inventory.model import (
    FindingKind,
    Owner,
    OwnerStatus,
    PatRecord,
    PatStatus,
    Severity,
)
from tests.inventory.factories import DAY, NOW, pat

RULES = FindingRules()


def kinds(record: PatRecord, *, now: datetime = NOW, rules: FindingRules = RULES) -> set[str]:
    return {f.kind.value for f in evaluate(record, now=now, rules=rules).findings}


CASES: list[tuple[str, PatRecord, set[str]]] = [
    ("clean", pat(), set()),
    ("global", pat(is_global=True), {"global"}),
    ("full access", pat(scopes=("app_token",)), {"full-access"}),
    ("full access among others", pat(scopes=("vso.code", "app_token")), {"full-access"}),
    ("expires in 14 days exactly", pat(valid_to=NOW + 14 * DAY), {"expiring"}),
    ("expires in 14 days and a second", pat(valid_to=NOW + 14 * DAY + timedelta(seconds=1)), set()),
    ("expires within the hour", pat(valid_to=NOW + timedelta(minutes=30)), {"expiring"}),
    (
        "lifetime 91 days",
        pat(valid_from=NOW - 71 * DAY, valid_to=NOW + 20 * DAY),
        {"long-lived"},
    ),
    ("lifetime 90 days exactly", pat(valid_from=NOW - 70 * DAY, valid_to=NOW + 20 * DAY), set()),
    ("unknown start: no lifetime finding", pat(valid_from=None, valid_to=NOW + 300 * DAY), set()),
    ("code write", pat(scopes=("vso.code_write",)), {"broad-scope"}),
    ("code read", pat(scopes=("vso.code", "vso.work_write")), set()),
    ("manage scopes", pat(scopes=("vso.serviceendpoint_manage", "vso.build")), {"broad-scope"}),
    (
        "owner disabled",
        pat(owner=Owner(descriptor="aad.bob", principal_name="bob@x", status=OwnerStatus.DISABLED)),
        {"owner-disabled"},
    ),
    (
        "owner removed",
        pat(owner=Owner(descriptor="aad.bob", status=OwnerStatus.REMOVED)),
        {"owner-removed"},
    ),
    (
        "owner unknown is not a finding",
        pat(owner=Owner(descriptor="x", status=OwnerStatus.UNKNOWN)),
        set(),
    ),
    ("expired yesterday", pat(valid_to=NOW - DAY), {"expired"}),
    ("expiring at now is expired", pat(valid_to=NOW), {"expired"}),
    (
        "expired global full-access: only expired",
        pat(valid_to=NOW - DAY, is_global=True, scopes=("app_token",)),
        {"expired"},
    ),
    ("revoked: nothing", pat(is_valid=False, is_global=True, scopes=("app_token",)), set()),
    (
        "everything at once",
        pat(
            is_global=True,
            scopes=("app_token", "vso.code_manage"),
            valid_from=NOW - 360 * DAY,
            valid_to=NOW + 2 * DAY,
            owner=Owner(descriptor="aad.c", status=OwnerStatus.DISABLED),
        ),
        {"global", "full-access", "broad-scope", "expiring", "long-lived", "owner-disabled"},
    ),
]


@pytest.mark.parametrize(("record", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rules(record: PatRecord, expected: set[str]) -> None:
    assert kinds(record) == expected


def test_findings_are_sorted_worst_first_with_fixed_severities() -> None:
    row = evaluate(CASES[-1][1], now=NOW, rules=RULES)
    severities = [f.severity for f in row.findings]
    assert severities == sorted(severities, reverse=True)
    assert row.findings[0].kind is FindingKind.GLOBAL
    for finding in row.findings:
        assert finding.severity is SEVERITIES[finding.kind]
    assert row.max_severity is Severity.CRITICAL


def test_every_finding_has_a_one_line_summary_and_fix() -> None:
    row = evaluate(CASES[-1][1], now=NOW, rules=RULES)
    for finding in (
        *row.findings,
        *evaluate(pat(valid_to=NOW - DAY), now=NOW, rules=RULES).findings,
    ):
        assert finding.summary
        assert finding.fix
        assert "\n" not in finding.summary + finding.fix


def test_global_counts_down_to_retirement_then_drops_to_low() -> None:
    before = evaluate(pat(is_global=True), now=NOW, rules=RULES).findings[0]
    assert before.severity is Severity.CRITICAL
    assert "2026-12-01" in before.summary
    assert "in 3 day(s)" in before.summary  # 2026-11-27 12:00 -> 2026-12-01 00:00
    after_now = GLOBAL_PAT_RETIREMENT + DAY
    record = pat(is_global=True, valid_to=after_now + 20 * DAY)
    after = evaluate(record, now=after_now, rules=RULES).findings[0]
    assert after.kind is FindingKind.GLOBAL
    assert after.severity is Severity.LOW
    assert "stopped working" in after.summary


def test_managed_pats_get_the_patwarden_fix_and_are_marked() -> None:
    unmanaged = evaluate(pat(is_global=True), now=NOW, rules=RULES).findings[0]
    managed = evaluate(pat(is_global=True, managed=True), now=NOW, rules=RULES).findings[0]
    assert not unmanaged.managed
    assert managed.managed
    assert "patwarden adopt" in managed.fix
    assert "patwarden rotate" in managed.fix
    assert "organization-scoped replacement" in unmanaged.fix
    for record in (
        pat(managed=True, scopes=("app_token",)),
        pat(managed=True, valid_to=NOW + DAY),
        pat(managed=True, valid_from=NOW - 200 * DAY),
        pat(managed=True, scopes=("vso.code_write",)),
    ):
        finding = evaluate(record, now=NOW, rules=RULES).findings[0]
        assert finding.managed
        assert "patwarden" in finding.fix


@pytest.mark.parametrize(
    ("rules", "record", "expected"),
    [
        (FindingRules(expiring_within=30 * DAY), pat(valid_to=NOW + 25 * DAY), {"expiring"}),
        (FindingRules(expiring_within=3 * DAY), pat(valid_to=NOW + 5 * DAY), set()),
        (FindingRules(max_lifetime=20 * DAY), pat(), {"long-lived"}),
        (FindingRules(broad_scopes=frozenset({"vso.packaging"})), pat(), {"broad-scope"}),
    ],
)
def test_thresholds_are_configurable(
    rules: FindingRules, record: PatRecord, expected: set[str]
) -> None:
    assert kinds(record, rules=rules) == expected


def test_nonpositive_thresholds_are_refused() -> None:
    with pytest.raises(ConfigError, match="positive"):
        FindingRules(expiring_within=timedelta(0))
    with pytest.raises(ConfigError, match="positive"):
        FindingRules(max_lifetime=-DAY)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        evaluate(pat(), now=datetime(2026, 11, 27), rules=RULES)


@pytest.mark.parametrize(
    ("record", "status"),
    [
        (pat(), PatStatus.ACTIVE),
        (pat(is_valid=None), PatStatus.ACTIVE),
        (pat(is_valid=False), PatStatus.REVOKED),
        (pat(valid_to=NOW - DAY, is_valid=False), PatStatus.EXPIRED),
        (pat(valid_to=None), PatStatus.ACTIVE),
    ],
)
def test_status(record: PatRecord, status: PatStatus) -> None:
    assert pat_status(record, now=NOW) is status


def test_broad_scope_list_is_write_or_manage_only() -> None:
    # The documented list must not grow read scopes by accident (docs/inventory.md lists it).
    for scope in BROAD_SCOPES:
        assert scope.startswith("vso.")
        assert scope in {"vso.tokens", "vso.tokenadministration", "vso.build_execute"} or any(
            scope.endswith(s) for s in ("_write", "_manage", "_full", "_execute", "_publish")
        )


def test_parse_names() -> None:
    assert Severity.parse("HIGH") is Severity.HIGH
    assert FindingKind.parse("full_access") is FindingKind.FULL_ACCESS
    with pytest.raises(ConfigError, match="Use one of"):
        Severity.parse("urgent")
    with pytest.raises(ConfigError, match="global"):
        FindingKind.parse("nope")


# --- managed PATs (issue 10, defect 7) ---------------------------------------------------------

MARKED = "patwarden:flux-git:0123456789abcdef0123456789abcdef"


def test_a_managed_pat_rotated_before_expiry_is_not_expiring() -> None:
    rules = FindingRules(rotate_before={"flux-git": 7 * DAY})
    soon = pat(display_name=MARKED, managed=True, valid_to=NOW + 10 * DAY)
    assert FindingKind.EXPIRING not in set(evaluate(soon, now=NOW, rules=rules).kinds)


def test_a_managed_pat_past_its_rotation_date_is_expiring() -> None:
    rules = FindingRules(rotate_before={"flux-git": 7 * DAY})
    overdue = pat(display_name=MARKED, managed=True, valid_to=NOW + 5 * DAY)
    assert FindingKind.EXPIRING in set(evaluate(overdue, now=NOW, rules=rules).kinds)


def test_an_unmanaged_pat_named_like_a_managed_one_is_expiring() -> None:
    rules = FindingRules(rotate_before={"flux-git": 7 * DAY})
    lookalike = pat(display_name=MARKED, managed=False, valid_to=NOW + 10 * DAY)
    assert FindingKind.EXPIRING in set(evaluate(lookalike, now=NOW, rules=rules).kinds)
