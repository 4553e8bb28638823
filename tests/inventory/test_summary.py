"""Running totals: counts, weekly expiry buckets, the worst-N rows."""

from __future__ import annotations

from datetime import timedelta

from patwarden.inventory.findings import FindingRules, evaluate
from patwarden.inventory.model import FindingKind, PatStatus, Severity
from patwarden.inventory.summary import EXPIRY_WEEKS, SummaryBuilder
from tests.inventory.factories import DAY, NOW, pat

RULES = FindingRules()


def build(records, *, top=50):  # type: ignore[no-untyped-def]
    builder = SummaryBuilder(now=NOW, organizations=("contoso",), top=top)
    for record in records:
        builder.add(evaluate(record, now=NOW, rules=RULES))
    return builder


def test_counts_by_status_kind_and_severity() -> None:
    builder = build(
        [
            pat(),
            pat(is_global=True),
            pat(is_global=True, scopes=("app_token",)),
            pat(valid_to=NOW - DAY),
            pat(is_valid=False),
            pat(managed=True, scopes=("vso.code_write",)),
        ]
    )
    summary = builder.summary(users_scanned=4)
    assert summary.total_pats == 6
    assert summary.users_scanned == 4
    assert summary.pats_with_findings == 4
    assert summary.managed_with_findings == 1
    assert summary.by_status == {PatStatus.ACTIVE: 4, PatStatus.EXPIRED: 1, PatStatus.REVOKED: 1}
    assert summary.by_kind[FindingKind.GLOBAL] == 2
    assert summary.by_kind[FindingKind.FULL_ACCESS] == 1
    assert summary.by_kind[FindingKind.EXPIRED] == 1
    assert summary.by_kind[FindingKind.BROAD_SCOPE] == 1
    assert summary.by_kind[FindingKind.OWNER_DISABLED] == 0
    assert summary.by_severity[Severity.CRITICAL] == 2
    assert summary.by_severity[Severity.HIGH] == 1
    assert summary.worst is Severity.CRITICAL
    assert summary.count_at_least(Severity.HIGH) == 3
    assert summary.count_at_least(Severity.INFO) == 5


def test_empty_summary() -> None:
    summary = build([]).summary()
    assert summary.total_pats == 0
    assert summary.worst is None
    assert summary.count_at_least(Severity.INFO) == 0
    assert [w.count for w in summary.expiry_weeks] == [0] * 13


def test_weekly_expiry_buckets_cover_90_days() -> None:
    offsets = [0.5, 6.9, 7, 13, 30, 83.9, 84, 89.9, 90, 120]
    records = [pat(valid_to=NOW + timedelta(days=d)) for d in offsets]
    records += [pat(valid_to=NOW - DAY), pat(valid_to=NOW + 3 * DAY, is_valid=False)]
    weeks = build(records).summary().expiry_weeks
    assert EXPIRY_WEEKS == 13
    assert [w.count for w in weeks] == [2, 2, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 2]
    assert weeks[0].start == NOW
    assert weeks[1].start == NOW + 7 * DAY
    assert weeks[-1].start == NOW + 84 * DAY
    assert weeks[-1].end == NOW + 90 * DAY


def test_keeps_only_the_worst_rows_worst_first() -> None:
    records = [pat(scopes=("vso.code_write",)) for _ in range(20)]
    records += [pat(is_global=True, authorization_id=f"g{i}") for i in range(3)]
    records += [pat(scopes=("app_token",), valid_to=NOW + DAY, authorization_id="fa-soon")]
    records += [pat(scopes=("app_token",), valid_to=NOW + 40 * DAY, authorization_id="fa-late")]
    records += [pat() for _ in range(50)]  # clean rows are never kept
    worst = build(records, top=5).worst_rows()
    # Equal rows keep their arrival order; full access expiring sooner ranks above later.
    ids = [r.pat.authorization_id for r in worst]
    assert ids == ["g0", "g1", "g2", "fa-soon", "fa-late"]
    assert len(worst) == 5


def test_top_zero_keeps_nothing() -> None:
    assert build([pat(is_global=True)], top=0).worst_rows() == []
