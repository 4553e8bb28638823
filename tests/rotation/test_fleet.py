"""The fleet: bounded concurrency, one token's failure never stops the others, exit codes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from patwarden.domain.models import CreatedPat, IssuedPat, TokenSpec
from patwarden.errors import AzureDevOpsError, ReloginRequired, StateError
from patwarden.rotation.fleet import (
    EXIT_ALL_FAILED,
    EXIT_OK,
    EXIT_SOME_FAILED,
    FleetProgress,
    FleetReport,
    FleetStatus,
    SharedListingIssuer,
    TokenRunner,
    WorkerFactory,
    run_fleet,
)
from patwarden.rotation.outcomes import Finding, FindingKind, OutcomeKind, RunReport, TokenOutcome
from patwarden.secret import Secret
from tests.rotation.fakes import T0, FakeClock, FakeIssuer


def specs(count: int) -> list[TokenSpec]:
    return [
        TokenSpec(
            name=f"token-{i:02d}",
            organization="contoso" if i % 2 else "fabrikam",
            scopes=("vso.code",),
            lifetime=timedelta(days=30),
            rotate_before=timedelta(days=7),
            revoke_after=timedelta(days=1),
        )
        for i in range(count)
    ]


def outcome(spec: TokenSpec, kind: OutcomeKind, reason: str = "") -> RunReport:
    finding = Finding(kind=FindingKind.DRIFT, token_name=spec.name, detail="d")
    return RunReport(
        outcomes=(TokenOutcome(token_name=spec.name, kind=kind, reason=reason or kind.value),),
        findings=(finding,),
    )


def simple_worker(run: TokenRunner) -> WorkerFactory:
    @contextmanager
    def worker() -> Iterator[TokenRunner]:
        yield run

    return worker


class Gauge:
    """Counts how many runners are active at once.

    With ``meet`` set, the first ``meet`` runners wait for each other at a barrier before they
    finish: the peak then reaches ``meet`` however loaded the machine is (no timing involved),
    and a pool smaller than ``meet`` breaks the barrier instead of hanging.
    """

    def __init__(self, meet: int = 0) -> None:
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0
        self.calls = 0
        self.threads: set[str] = set()
        self.barrier = threading.Barrier(meet, timeout=30) if meet else None

    def run(self, spec: TokenSpec) -> RunReport:
        with self.lock:
            self.active += 1
            self.calls += 1
            meets = self.barrier is not None and self.calls <= self.barrier.parties
            self.peak = max(self.peak, self.active)
            self.threads.add(threading.current_thread().name)
        if meets and self.barrier is not None:
            self.barrier.wait()
        else:
            time.sleep(0.03)
        with self.lock:
            self.active -= 1
        return outcome(spec, OutcomeKind.ROTATED)


@pytest.mark.parametrize("concurrency", [1, 3, 8])
def test_concurrency_is_bounded(concurrency: int) -> None:
    gauge = Gauge(meet=concurrency)
    report = run_fleet(specs=specs(12), worker=simple_worker(gauge.run), concurrency=concurrency)
    assert gauge.peak == concurrency
    assert len(gauge.threads) == concurrency
    assert report.concurrency == concurrency
    assert [o.token_name for o in report.outcomes] == [s.name for s in specs(12)]
    assert report.status is FleetStatus.OK
    assert report.exit_code == EXIT_OK


def test_never_more_workers_than_tokens() -> None:
    gauge = Gauge(meet=2)  # both wait for each other: the pool must grow, but only to 2
    report = run_fleet(specs=specs(2), worker=simple_worker(gauge.run), concurrency=16)
    assert report.concurrency == 2
    assert run_fleet(specs=[], worker=simple_worker(gauge.run), concurrency=4).outcomes == ()


def test_workers_that_keep_the_cpu_busy_are_not_joined_by_more() -> None:
    """Nothing due, local sinks: a token is pure computation, and more threads would only
    contend for the interpreter lock. The CPU clock runs with the wall clock: busy."""
    gauge = Gauge()
    report = run_fleet(
        specs=specs(12), worker=simple_worker(gauge.run), concurrency=8, cpu_time=time.monotonic
    )
    assert report.concurrency == 1
    assert gauge.peak == 1
    assert report.status is FleetStatus.OK


def test_workers_that_wait_are_joined_by_enough_more_at_once() -> None:
    """Waiting for Azure: the CPU clock stands still, so the pool grows to its limit in one
    step instead of doubling its way there."""
    gauge = Gauge()
    report = run_fleet(
        specs=specs(40), worker=simple_worker(gauge.run), concurrency=8, cpu_time=lambda: 0.0
    )
    assert report.concurrency == 8
    assert gauge.peak > 1


def test_a_failing_token_does_not_stop_the_others() -> None:
    def run(spec: TokenSpec) -> RunReport:
        if spec.name == "token-03":
            raise AzureDevOpsError("Azure DevOps answered 500 for token-03")
        if spec.name == "token-05":
            raise KeyError("boom")  # a bug: reported by type only, never its text
        return outcome(spec, OutcomeKind.ROTATED)

    report = run_fleet(specs=specs(8), worker=simple_worker(run), concurrency=3)
    kinds = {o.token_name: o.kind for o in report.outcomes}
    assert kinds.pop("token-03") is OutcomeKind.FAILED
    assert kinds.pop("token-05") is OutcomeKind.FAILED
    assert set(kinds.values()) == {OutcomeKind.ROTATED}
    reasons = {o.token_name: o.reason for o in report.failed}
    assert reasons == {
        "token-03": "Azure DevOps answered 500 for token-03",
        "token-05": "unexpected KeyError (run with --debug for details)",
    }
    assert report.status is FleetStatus.SOME_FAILED
    assert report.exit_code == EXIT_SOME_FAILED
    assert len(report.findings) == 6  # the others' findings are all kept


@pytest.mark.parametrize(
    ("kinds", "status", "code"),
    [
        ([OutcomeKind.ROTATED, OutcomeKind.NOT_DUE], FleetStatus.OK, EXIT_OK),
        ([OutcomeKind.NOT_DUE, OutcomeKind.NOT_DUE], FleetStatus.OK, EXIT_OK),
        ([OutcomeKind.SKIPPED, OutcomeKind.WOULD_ROTATE], FleetStatus.OK, EXIT_OK),
        ([OutcomeKind.ROTATED, OutcomeKind.FAILED], FleetStatus.SOME_FAILED, EXIT_SOME_FAILED),
        ([OutcomeKind.SKIPPED, OutcomeKind.ROLLED_BACK], FleetStatus.SOME_FAILED, EXIT_SOME_FAILED),
        ([OutcomeKind.FAILED, OutcomeKind.ROLLED_BACK], FleetStatus.ALL_FAILED, EXIT_ALL_FAILED),
        ([OutcomeKind.FAILED, OutcomeKind.NOT_DUE], FleetStatus.ALL_FAILED, EXIT_ALL_FAILED),
        ([], FleetStatus.OK, EXIT_OK),
    ],
)
def test_exit_codes_say_all_some_or_none(
    kinds: list[OutcomeKind], status: FleetStatus, code: int
) -> None:
    given = dict(zip([s.name for s in specs(len(kinds))], kinds, strict=True))
    report = run_fleet(
        specs=specs(len(kinds)),
        worker=simple_worker(lambda spec: outcome(spec, given[spec.name])),
        concurrency=2,
    )
    assert (report.status, report.exit_code) == (status, code)
    assert EXIT_ALL_FAILED not in (2, 3, 4, 5, 6, 7)  # distinct from every error class's code


@pytest.mark.parametrize(
    ("kinds", "code"),
    [
        ([OutcomeKind.FAILED, OutcomeKind.FAILED], 3),  # one cause explains every failure
        ([OutcomeKind.ROTATED, OutcomeKind.FAILED], EXIT_SOME_FAILED),  # the sign-in worked once
        ([OutcomeKind.ROTATED, OutcomeKind.NOT_DUE], EXIT_OK),
    ],
)
def test_a_cause_sets_the_exit_code_only_when_every_token_failed(
    kinds: list[OutcomeKind], code: int
) -> None:
    given = dict(zip([s.name for s in specs(len(kinds))], kinds, strict=True))
    report = run_fleet(
        specs=specs(len(kinds)),
        worker=simple_worker(lambda spec: outcome(spec, given[spec.name])),
        concurrency=2,
    )
    lost = ReloginRequired("the grant was revoked", hint="run `patwarden login`")
    caused = replace(report, cause=lost)
    assert caused.exit_code == code
    document = caused.to_json()
    assert document["exit_code"] == code
    assert ("error" in document) is (code == 3)
    if code == 3:  # the error and its fix, as the JSON reader gets them
        assert document["error"] == {
            "type": "ReloginRequired",
            "message": "the grant was revoked",
            "hint": "run `patwarden login`",
            "docs": lost.docs,
        }


def test_progress_is_reported_once_per_token() -> None:
    seen: list[FleetProgress] = []
    report = run_fleet(
        specs=specs(5),
        worker=simple_worker(lambda spec: outcome(spec, OutcomeKind.ROTATED)),
        concurrency=2,
        on_progress=seen.append,
    )
    assert [p.done for p in seen] == [1, 2, 3, 4, 5]
    assert {p.total for p in seen} == {5}
    assert sorted(p.outcome.token_name for p in seen) == [o.token_name for o in report.outcomes]


def test_a_worker_that_cannot_start_leaves_the_tokens_to_the_others() -> None:
    starts = []

    @contextmanager
    def worker() -> Iterator[TokenRunner]:
        starts.append(1)
        if len(starts) == 1:
            raise StateError("state file is locked by the backup job")
        yield lambda spec: outcome(spec, OutcomeKind.ROTATED)

    report = run_fleet(specs=specs(6), worker=worker, concurrency=2)
    assert {o.kind for o in report.outcomes} == {OutcomeKind.ROTATED}


def test_when_no_worker_can_start_every_token_fails_with_the_reason() -> None:
    @contextmanager
    def worker() -> Iterator[TokenRunner]:
        raise StateError("state file is locked by the backup job")
        yield  # pragma: no cover

    report = run_fleet(specs=specs(3), worker=worker, concurrency=2)
    assert {o.reason for o in report.outcomes} == {
        "not run: state file is locked by the backup job"
    }
    assert report.exit_code == EXIT_ALL_FAILED


def test_json_document() -> None:
    report = FleetReport(
        outcomes=(
            TokenOutcome(token_name="a", kind=OutcomeKind.ROTATED, reason="due"),
            TokenOutcome(token_name="b", kind=OutcomeKind.FAILED, reason="refused"),
            TokenOutcome(token_name="c", kind=OutcomeKind.ROTATED, reason="due"),
        ),
        concurrency=3,
        seconds=1.23456,
    )
    document = report.to_json()
    assert document["ok"] is False
    assert document["status"] == "some_failed"
    assert document["exit_code"] == 1
    assert document["summary"] == {"rotated": 2, "failed": 1}
    assert document["seconds"] == 1.235
    tokens = document["tokens"]
    assert isinstance(tokens, list)
    assert [t["token"] for t in tokens] == ["a", "b", "c"]


class CountingIssuer:
    """A PatIssuer whose list_marked is slow and counted (everything else is unused here)."""

    def __init__(self, *, fail_first: bool = False, refuse: bool = False) -> None:
        self.calls: list[str] = []
        self.fail_first = fail_first
        self.refuse = refuse
        self.lock = threading.Lock()

    def list_marked(self, *, organization: str) -> list[IssuedPat]:
        with self.lock:
            self.calls.append(organization)
            first = len(self.calls) == 1
        time.sleep(0.02)
        if first and self.fail_first:
            raise AzureDevOpsError("Azure DevOps answered 503")
        if self.refuse:
            raise ReloginRequired("cannot get a token silently: the grant was revoked")
        now = datetime.now(UTC)
        return [
            IssuedPat(
                authorization_id=organization,
                display_name="patwarden:x:" + "0" * 32,
                valid_from=now,
                valid_to=now + timedelta(days=1),
            )
        ]

    def create(self, **kwargs: object) -> CreatedPat:
        raise NotImplementedError

    def get(self, **kwargs: object) -> IssuedPat | None:
        raise NotImplementedError

    def revoke(self, *, organization: str, authorization_id: str) -> None:
        self.calls.append(f"revoke {authorization_id}")

    def verify(self, *, organization: str, secret: Secret, scopes: object) -> None:
        self.calls.append("verify")


def test_shared_listing_lists_each_organization_once_for_all_workers() -> None:
    inner = CountingIssuer()
    shared = SharedListingIssuer(inner)

    def run(spec: TokenSpec) -> RunReport:
        listed = shared.list_marked(organization=spec.organization)
        assert [p.authorization_id for p in listed] == [spec.organization]
        return outcome(spec, OutcomeKind.NOT_DUE)

    run_fleet(specs=specs(10), worker=simple_worker(run), concurrency=5)
    assert sorted(inner.calls) == ["contoso", "fabrikam"]
    shared.revoke(organization="contoso", authorization_id="x")
    shared.verify(organization="contoso", secret=Secret("v"), scopes=["vso.code"])
    assert inner.calls[-2:] == ["revoke x", "verify"]


def test_a_failed_listing_is_not_kept() -> None:
    inner = CountingIssuer(fail_first=True)
    shared = SharedListingIssuer(inner)
    with pytest.raises(AzureDevOpsError):
        shared.list_marked(organization="contoso")
    assert len(shared.list_marked(organization="contoso")) == 1
    assert len(shared.list_marked(organization="contoso")) == 1
    assert inner.calls == ["contoso", "contoso"]


def test_a_listing_refused_for_the_rotators_sign_in_is_not_tried_again_in_the_run() -> None:
    inner = CountingIssuer(refuse=True)
    shared = SharedListingIssuer(inner)
    for _ in range(3):
        with pytest.raises(ReloginRequired, match="grant was revoked"):
            shared.list_marked(organization="contoso")
    assert inner.calls == ["contoso"], "one refused sign-in, not one per token"
    assert len(SharedListingIssuer(CountingIssuer()).list_marked(organization="contoso")) == 1


def test_the_shared_issuer_passes_create_and_get_through_unchanged() -> None:
    inner = FakeIssuer(FakeClock())
    shared = SharedListingIssuer(inner)
    created = shared.create(
        organization="contoso",
        display_name="patwarden:x:" + "0" * 32,
        scopes=["vso.code"],
        valid_to=T0 + timedelta(days=1),
    )
    pat_id = created.pat.authorization_id
    assert inner.active() == {pat_id}
    assert shared.get(organization="contoso", authorization_id=pat_id) == created.pat
    shared.revoke(organization="contoso", authorization_id=pat_id)
    assert shared.get(organization="contoso", authorization_id=pat_id) is None
