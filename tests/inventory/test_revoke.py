"""Bulk revocation: selection, batching, failure attribution, audit records, dry run."""

from __future__ import annotations

import pytest

from patwarden.domain.models import AuditRecord
from patwarden.errors import AuthError, ConfigError
from patwarden.inventory.findings import FindingRules, evaluate
from patwarden.inventory.model import FindingKind, InventoryRow, Owner
from patwarden.inventory.revoke import (
    AUDIT_REVOKE_FAILED,
    AUDIT_REVOKED,
    BulkRevoker,
    RevocationSelection,
)
from tests.inventory.factories import DAY, NOW, pat
from tests.inventory.fakes import FakeRevoker

RULES = FindingRules()


def row(**changes: object) -> InventoryRow:
    return evaluate(pat(**changes), now=NOW, rules=RULES)


def revoker_for(fake: FakeRevoker, *, dry_run: bool = False, batch_size: int = 3):  # type: ignore[no-untyped-def]
    audit: list[AuditRecord] = []
    bulk = BulkRevoker(
        revoker=fake, audit=audit.append, now=lambda: NOW, dry_run=dry_run, batch_size=batch_size
    )
    return bulk, audit


def test_selection_by_kind_and_user() -> None:
    glob = row(is_global=True)
    full = row(scopes=("app_token",), owner=Owner(descriptor="aad.bob", principal_name="Bob@X"))
    clean = row()
    by_kind = RevocationSelection(kinds=frozenset({FindingKind.GLOBAL, FindingKind.FULL_ACCESS}))
    assert [by_kind.matches(r) for r in (glob, full, clean)] == [True, True, False]
    by_user = RevocationSelection(kinds=by_kind.kinds, users=frozenset({"bob@x"}))
    assert [by_user.matches(r) for r in (glob, full, clean)] == [False, True, False]
    by_descriptor = RevocationSelection(kinds=by_kind.kinds, users=frozenset({"aad.bob"}))
    assert by_descriptor.matches(full)
    with pytest.raises(ConfigError, match="--finding"):
        RevocationSelection(kinds=frozenset())


def test_revokes_in_batches_per_org_and_audits_each() -> None:
    fake = FakeRevoker()
    bulk, audit = revoker_for(fake)
    rows = [row(authorization_id=f"c{i}", is_global=False) for i in range(4)]
    rows += [row(authorization_id="f1", organization="fabrikam")]
    report = bulk.add_all(rows)
    assert report.selected == report.revoked == 5
    assert report.failed == 0
    assert fake.calls == [
        ("contoso", ["c0", "c1", "c2"]),
        ("contoso", ["c3"]),
        ("fabrikam", ["f1"]),
    ]
    assert [a.authorization_id for a in audit] == ["c0", "c1", "c2", "c3", "f1"]
    assert {a.kind for a in audit} == {AUDIT_REVOKED}
    detail = dict(audit[0].detail)
    assert detail["organization"] == "contoso"
    assert detail["owner"] == "alice@contoso.example"
    assert detail["via"] == "inventory revoke"
    assert audit[0].at == NOW


def test_a_failing_batch_is_retried_one_by_one_to_name_the_failures() -> None:
    fake = FakeRevoker(bad={"c1"})
    bulk, audit = revoker_for(fake)
    report = bulk.add_all([row(authorization_id=f"c{i}") for i in range(3)])
    assert report.revoked == 2
    assert report.failed == 1
    assert [f.row.pat.authorization_id for f in report.failures] == ["c1"]
    assert report.failures[0].error == "Azure DevOps answered HTTP 400: bad id"
    assert fake.revoked == {"c0", "c2"}
    assert [(a.kind, a.authorization_id) for a in audit] == [
        (AUDIT_REVOKED, "c0"),
        (AUDIT_REVOKE_FAILED, "c1"),
        (AUDIT_REVOKED, "c2"),
    ]
    assert dict(audit[1].detail)["error"] == "Azure DevOps answered HTTP 400: bad id"


def test_access_denied_stops_with_the_auth_error() -> None:
    bulk, audit = revoker_for(FakeRevoker(denied=True))
    with pytest.raises(AuthError, match="may not revoke"):
        bulk.add_all([row(authorization_id=f"c{i}") for i in range(5)])
    assert audit == []


def test_dry_run_revokes_and_audits_nothing() -> None:
    fake = FakeRevoker()
    bulk, audit = revoker_for(fake, dry_run=True)
    report = bulk.add_all([row(authorization_id=f"c{i}") for i in range(4)])
    assert report.dry_run
    assert report.selected == 4
    assert report.revoked == 0
    assert [o.row.pat.authorization_id for o in report.revoked_examples] == ["c0", "c1", "c2", "c3"]
    assert fake.calls == []
    assert audit == []


def test_a_global_pat_seen_in_two_orgs_is_revoked_once() -> None:
    fake = FakeRevoker()
    bulk, _ = revoker_for(fake)
    report = bulk.add_all(
        [
            row(authorization_id="g", is_global=True),
            row(authorization_id="g", is_global=True, organization="fabrikam"),
            row(authorization_id="e", valid_to=NOW - DAY),
        ]
    )
    assert report.selected == report.revoked == 2
    assert fake.calls == [("contoso", ["g", "e"])]
