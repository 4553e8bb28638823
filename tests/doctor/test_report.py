"""The doctor's report and the verdicts that need no I/O: clock skew, policy clamps, exit codes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from patwarden.azdo.models import PatToken
from patwarden.config.problems import InvalidConfig, Problem
from patwarden.doctor.report import (
    Check,
    DoctorReport,
    Status,
    clamp_checks,
    clock_skew_check,
    config_failure_report,
)
from patwarden.errors import ConfigError

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
OP = "0123456789abcdef0123456789abcdef"


def check(status: Status) -> Check:
    return Check(check="x", status=status, detail="d")


@pytest.mark.parametrize(
    ("statuses", "normal", "strict"),
    [
        ((Status.OK, Status.SKIPPED), 0, 0),
        ((Status.OK, Status.WARNING), 0, 1),
        ((Status.WARNING, Status.FAILURE), 3, 3),
        ((), 0, 0),
    ],
)
def test_exit_codes(statuses: tuple[Status, ...], normal: int, strict: int) -> None:
    report = DoctorReport(checks=tuple(check(s) for s in statuses))
    assert report.exit_code() == normal
    assert report.exit_code(strict=True) == strict


def test_summary_and_json() -> None:
    report = DoctorReport(
        checks=(
            check(Status.OK),
            check(Status.SKIPPED),
            Check(check="identity rotator", status=Status.FAILURE, detail="d", fix="run login"),
            check(Status.WARNING),
            check(Status.WARNING),
        )
    )
    assert report.summary() == (
        "1 failure, 2 warnings: the next rotation would fail. Fix the ✗ lines."
    )
    document = report.to_json()
    assert document["ok"] is False
    assert document["exit_code"] == 3
    assert document["counts"] == {"ok": 1, "warning": 2, "failure": 1, "skipped": 1}
    assert document["checks"][2] == {
        "check": "identity rotator",
        "status": "failure",
        "detail": "d",
        "fix": "run login",
    }
    assert [c.symbol for c in report.checks] == ["✓", "-", "✗", "!", "!"]
    assert DoctorReport(checks=(check(Status.OK), check(Status.SKIPPED))).summary() == (
        "All checks passed (1 skipped)."
    )
    assert DoctorReport(checks=(check(Status.WARNING),)).summary() == (
        "1 warning; the next rotation would work."
    )


def test_each_config_problem_is_a_failure_with_its_fix() -> None:
    source = Path("/etc/patwarden/patwarden.yaml")
    err = InvalidConfig(
        source=source,
        problems=[
            Problem(path="identities.writer.kind", message="a service_principal cannot be the "
                    "rotator", fix="make the rotator a user"),
            Problem(path="", message="the file must be a mapping of keys"),
        ],
    )  # fmt: skip
    report = config_failure_report(err)
    assert [(c.check, c.status, c.fix) for c in report.checks] == [
        ("config identities.writer.kind", Status.FAILURE, "make the rotator a user"),
        ("config (top level)", Status.FAILURE, "see docs/configuration.md"),
    ]
    assert report.checks[0].detail == f"{source}: a service_principal cannot be the rotator"
    assert report.exit_code() == 3


def test_an_unreadable_config_is_one_failure() -> None:
    report = config_failure_report(ConfigError("config file x not found", hint="pass --config"))
    assert report.checks == (
        Check(check="config", status=Status.FAILURE, detail="config file x not found",
              fix="pass --config"),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("offset", "status", "words"),
    [
        (timedelta(seconds=0), Status.OK, "within a few seconds"),
        (timedelta(seconds=30), Status.OK, "within a few seconds"),
        (timedelta(seconds=-90), Status.WARNING, "is 89 s behind"),
        (timedelta(seconds=90), Status.WARNING, "is 89 s ahead of"),
        (timedelta(minutes=10), Status.FAILURE, "is 599 s ahead of"),
        (timedelta(minutes=-10), Status.FAILURE, "is 599 s behind"),
    ],
)
def test_clock_skew(offset: timedelta, status: Status, words: str) -> None:
    """*offset* is how far the local clock runs ahead of the server's."""
    server_time = NOW - offset
    result = clock_skew_check(
        format_datetime(server_time, usegmt=True),
        sent_at=NOW,
        received_at=NOW,
        source="https://dev.azure.com",
    )
    assert result.status is status
    assert words in result.detail
    assert (result.fix is None) == (status is Status.OK)
    if result.fix:
        assert "NTP" in result.fix


def test_a_slow_round_trip_is_not_counted_as_skew() -> None:
    # The server stamped its Date somewhere in a 4-minute round trip: no evidence of skew.
    result = clock_skew_check(
        format_datetime(NOW, usegmt=True),
        sent_at=NOW - timedelta(minutes=2),
        received_at=NOW + timedelta(minutes=2),
        source="s",
    )
    assert result.status is Status.OK


@pytest.mark.parametrize("header", [None, "", "not a date"])
def test_a_missing_or_odd_date_header_is_a_warning(header: str | None) -> None:
    result = clock_skew_check(header, sent_at=NOW, received_at=NOW, source="s")
    assert result.status is Status.WARNING
    assert result.fix is not None


def pat(name: str, *, days: float, created: datetime = NOW) -> PatToken:
    return PatToken(
        authorization_id=str(uuid.uuid4()),
        display_name=name,
        scope=("vso.code",),
        valid_from=created,
        valid_to=created + timedelta(days=days),
        target_accounts=("org",),
    )


def test_no_clamp_when_the_granted_lifetime_matches() -> None:
    tokens = {"flux": {"lifetime": "30d", "rotate_before": "7d"}}
    issued = [pat(f"patwarden:flux:{OP}", days=30), pat("someone-elses", days=1)]
    (result,) = clamp_checks(org="contoso", tokens=tokens, issued=issued)
    assert result.status is Status.OK
    assert result.detail == "1 managed token(s) got their configured lifetime"


def test_nothing_issued_yet() -> None:
    (result,) = clamp_checks(org="contoso", tokens={"flux": {"lifetime": "30d"}}, issued=[])
    assert (result.status, result.detail) == (Status.OK, "no PATs issued for managed tokens yet")


def test_a_clamp_is_a_warning_naming_the_granted_lifetime() -> None:
    tokens = {"flux": {"lifetime": "30d", "rotate_before": "2d"}}
    issued = [
        pat(f"patwarden:flux:{OP}", days=30, created=NOW - timedelta(days=40)),  # older, unclamped
        pat(f"patwarden:flux:{'1' * 32}", days=7),  # the newest decides
    ]
    (result,) = clamp_checks(org="contoso", tokens=tokens, issued=issued)
    assert result.status is Status.WARNING
    assert result.check == "policy clamps contoso"
    assert "token flux: Azure DevOps issued PAT" in result.detail
    assert "for 7 days, the config asks for 30" in result.detail
    assert result.fix == "set tokens.flux.lifetime to 7d or less so schedules match what is issued"


def test_a_clamp_below_rotate_before_is_a_failure() -> None:
    tokens = {"flux": {"lifetime": "30d", "rotate_before": "7d"}}
    (result,) = clamp_checks(
        org="contoso", tokens=tokens, issued=[pat(f"patwarden:flux:{OP}", days=7)]
    )
    assert result.status is Status.FAILURE
    assert "rotate_before (7d) is not shorter, so every run would rotate it again" in result.detail
    assert result.fix is not None
    assert result.fix.startswith("set tokens.flux.lifetime to 7d or less")
