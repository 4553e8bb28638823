"""Scan → output → gate, over a fake source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from patwarden.errors import AzureDevOpsError
from patwarden.inventory.findings import FindingRules
from patwarden.inventory.model import FindingKind, Severity
from patwarden.inventory.outputs import OutputFormat
from patwarden.inventory.revoke import RevocationSelection
from patwarden.inventory.run import (
    FINDINGS_EXIT_CODE,
    FindingsAboveThreshold,
    InventoryIncomplete,
    RevocationIncomplete,
    ScanSettings,
    check_result,
    check_revocation,
    run_inventory,
    run_revocation,
)
from tests.inventory.factories import NOW
from tests.inventory.fakes import FakeRevoker, FakeSource

SETTINGS = ScanSettings(organizations=("contoso",), rules=FindingRules(), workers=2)


def test_run_writes_every_row_and_gates(tmp_path: Path) -> None:
    target = tmp_path / "inventory.json"
    source = FakeSource(users=3, per_user=2, global_id="g")
    result = run_inventory(
        source=source, settings=SETTINGS, now=NOW, output=OutputFormat.JSON, path=target
    )
    document = json.loads(target.read_text())
    assert len(document["pats"]) == 7
    assert result.summary.total_pats == 7
    assert [r.pat.authorization_id for r in result.worst_rows] == ["g"]
    check_result(result, fail_on=None)
    with pytest.raises(FindingsAboveThreshold, match="1 finding") as caught:
        check_result(result, fail_on=Severity.CRITICAL)
    assert caught.value.exit_code == FINDINGS_EXIT_CODE == 10


def test_only_findings(tmp_path: Path) -> None:
    target = tmp_path / "inventory.csv"
    settings = ScanSettings(organizations=("contoso",), only_findings=True)
    run_inventory(
        source=FakeSource(users=3, per_user=2, global_id="g"),
        settings=settings,
        now=NOW,
        output=OutputFormat.CSV,
        path=target,
    )
    assert len(target.read_text().splitlines()) == 2  # header + the global PAT


def test_incomplete_scan_is_exit_4_even_without_findings(tmp_path: Path) -> None:
    source = FakeSource(users=3, per_user=1, fail_users={"u1@x": AzureDevOpsError("HTTP 500")})
    result = run_inventory(
        source=source,
        settings=SETTINGS,
        now=NOW,
        output=OutputFormat.JSON,
        path=tmp_path / "x.json",
    )
    assert json.loads((tmp_path / "x.json").read_text())["problems"] == [
        "Skipped the PATs of u1@x in contoso: HTTP 500"
    ]
    with pytest.raises(InventoryIncomplete, match="1 user") as caught:
        check_result(result, fail_on=None)
    assert caught.value.exit_code == 4


def test_revocation_run_and_its_check() -> None:
    fake = FakeRevoker(bad={"contoso-aad.u1-0"})
    result, report = run_revocation(
        source=FakeSource(users=3, per_user=1, global_id="g"),
        revoker=fake,
        settings=SETTINGS,
        selection=RevocationSelection(kinds=frozenset({FindingKind.GLOBAL})),
        now=NOW,
        dry_run=False,
        audit=None,
        clock=lambda: NOW,
    )
    assert result.summary.total_pats == 4
    assert report.selected == report.revoked == 1
    assert fake.revoked == {"g"}
    check_revocation(report)
    report.failed = 1
    with pytest.raises(RevocationIncomplete, match="1 of 1"):
        check_revocation(report)
