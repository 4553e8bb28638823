"""The streaming scanner over a fake source: completeness, concurrency, failures, early stop."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from patwarden.errors import AuthError, AzureDevOpsError
from patwarden.inventory.findings import FindingRules
from patwarden.inventory.model import FindingKind
from patwarden.inventory.scanner import Scanner, ScanProgress
from tests.inventory.factories import NOW
from tests.inventory.fakes import FakeSource

RULES = FindingRules()


def scanner(source: FakeSource, orgs: tuple[str, ...] = ("contoso",), **kw: object) -> Scanner:
    return Scanner(source=source, organizations=orgs, now=NOW, rules=RULES, **kw)  # type: ignore[arg-type]


def test_every_pat_of_every_user_exactly_once_with_concurrency() -> None:
    source = FakeSource(users=60, per_user=4, delay=0.01)
    scan = scanner(source, ("contoso", "fabrikam"), workers=6)
    ids = Counter(row.pat.authorization_id for row in scan.rows())
    assert len(ids) == 2 * 60 * 4
    assert set(ids.values()) == {1}
    assert scan.pats == 480
    assert scan.users_listed == 120
    assert scan.users_scanned == 120
    assert scan.problems == []
    assert 1 < source.max_active <= 6


def test_rows_are_evaluated() -> None:
    source = FakeSource(users=1, per_user=0, global_id="g")
    rows = list(scanner(source).rows())
    assert [r.kinds for r in rows] == [(FindingKind.GLOBAL,)]


def test_a_global_pat_listed_by_several_organizations_counts_once() -> None:
    source = FakeSource(users=2, per_user=1, global_id="g")
    rows = list(scanner(source, ("contoso", "fabrikam", "tailspin")).rows())
    assert Counter(r.pat.authorization_id for r in rows)["g"] == 1
    assert len(rows) == 3 * 2 + 1


def test_a_failing_user_is_a_problem_not_a_stop() -> None:
    source = FakeSource(
        users=5,
        per_user=2,
        fail_users={"u2@x": AzureDevOpsError("Azure DevOps answered HTTP 500\nmore")},
    )
    scan = scanner(source)
    rows = list(scan.rows())
    assert len(rows) == 8
    assert scan.problems == ["Skipped the PATs of u2@x in contoso: Azure DevOps answered HTTP 500"]
    assert scan.problem_count == 1
    assert scan.users_scanned == 5


def test_access_denied_stops_the_scan() -> None:
    source = FakeSource(users=50, per_user=2, fail_users={"u1@x": AuthError("not a PCA")})
    with pytest.raises(AuthError, match="not a PCA"):
        list(scanner(source, workers=2).rows())


def test_an_unexpected_exception_is_not_swallowed() -> None:
    source = FakeSource(users=3, per_user=1, fail_users={"u0@x": KeyError("bug")})
    with pytest.raises(KeyError):
        list(scanner(source).rows())


def test_failing_to_list_users_stops_the_scan() -> None:
    source = FakeSource(users=10, per_user=1, fail_listing=AzureDevOpsError("graph is down"))
    with pytest.raises(AzureDevOpsError, match="graph is down"):
        list(scanner(source).rows())


def test_back_pressure_and_early_close_stop_the_workers() -> None:
    # Endless PAT lists: only a bounded buffer may be produced ahead of the consumer.
    source = FakeSource(users=4, per_user=0, endless=True)
    scan = scanner(source, workers=2, queue_size=20)
    rows = scan.rows()
    taken = [next(rows) for _ in range(10)]
    time.sleep(0.3)
    # consumed + queue capacity + one blocked put per worker
    assert source.produced <= 10 + 20 + 2
    rows.close()  # must return: workers notice the stop and give up their puts
    assert len(taken) == 10
    deadline = time.monotonic() + 5
    while source.active and time.monotonic() < deadline:
        time.sleep(0.01)
    assert source.active == 0


def test_progress_is_reported() -> None:
    seen: list[ScanProgress] = []
    scan = scanner(FakeSource(users=7, per_user=1), on_progress=seen.append)
    assert len(list(scan.rows())) == 7
    assert max(p.users_scanned for p in seen) == 7
    assert any(p.listing_done and p.users_listed == 7 for p in seen)


def test_needs_an_organization() -> None:
    from patwarden.errors import ConfigError

    with pytest.raises(ConfigError, match="--org"):
        scanner(FakeSource(users=1, per_user=1), ())
