"""The report of ``patwarden doctor``: checks, verdicts, exit codes, and the I/O-free verdicts.

:meth:`DoctorReport.exit_code`: 0 when nothing fails (warnings allowed), 3 when something would
make the next rotation fail; with ``strict``, warnings alone give 1. The live checks that produce
these lines are in :mod:`patwarden.doctor.checks`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from patwarden.domain.durations import DurationError, parse_duration
from patwarden.domain.marker import parse_marker
from patwarden.errors import ConfigError

if TYPE_CHECKING:
    from patwarden.azdo.models import PatToken

CLOCK_SKEW_WARNING = timedelta(seconds=60)
CLOCK_SKEW_FAILURE = timedelta(minutes=5)  # Entra's tolerance for token timestamps
CLAMP_SLACK = timedelta(days=1)  # issued lifetimes shorter than configured by more: a clamp
EXIT_FAILURE = 3
EXIT_WARNINGS = 1


class Status(enum.StrEnum):
    """The verdict of one check."""

    OK = "ok"
    WARNING = "warning"  # works today, needs attention soon
    FAILURE = "failure"  # the next rotation would fail
    SKIPPED = "skipped"  # could not be checked because an earlier check failed, or nothing to check


SYMBOLS = {Status.OK: "✓", Status.WARNING: "!", Status.FAILURE: "✗", Status.SKIPPED: "-"}


@dataclass(frozen=True, kw_only=True)
class Check:
    """One line of the report: what was checked, the verdict, what was found, how to fix it."""

    check: str
    status: Status
    detail: str
    fix: str | None = None

    @property
    def symbol(self) -> str:
        """✓, !, ✗ or -."""
        return SYMBOLS[self.status]


@dataclass(frozen=True, kw_only=True)
class DoctorReport:
    """Every check of one doctor run."""

    checks: tuple[Check, ...]

    def count(self, status: Status) -> int:
        """How many checks ended with *status*."""
        return sum(1 for check in self.checks if check.status is status)

    def exit_code(self, *, strict: bool = False) -> int:
        """3 if any check failed; else 1 with *strict* and a warning; else 0."""
        if self.count(Status.FAILURE):
            return EXIT_FAILURE
        return EXIT_WARNINGS if strict and self.count(Status.WARNING) else 0

    def summary(self) -> str:
        """One sentence for the end of the table."""
        failures, warnings = self.count(Status.FAILURE), self.count(Status.WARNING)
        if failures:
            return (
                f"{failures} failure{'s' * (failures != 1)}, {warnings} "
                f"warning{'s' * (warnings != 1)}: the next rotation would fail. Fix the ✗ lines."
            )
        if warnings:
            return f"{warnings} warning{'s' * (warnings != 1)}; the next rotation would work."
        skipped = self.count(Status.SKIPPED)
        return "All checks passed" + (f" ({skipped} skipped)." if skipped else ".")

    def to_json(self) -> dict[str, Any]:
        """The ``--output json`` document."""
        return {
            "ok": not self.count(Status.FAILURE),
            "exit_code": self.exit_code(),
            "counts": {status.value: self.count(status) for status in Status},
            "checks": [
                {"check": c.check, "status": c.status.value, "detail": c.detail, "fix": c.fix}
                for c in self.checks
            ],
        }


def config_failure_report(err: ConfigError) -> DoctorReport:
    """The report when the config cannot be loaded: one failed check per problem."""
    from patwarden.config.problems import InvalidConfig

    if isinstance(err, InvalidConfig):
        return DoctorReport(
            checks=tuple(
                Check(
                    check=f"config {problem.path or '(top level)'}",
                    status=Status.FAILURE,
                    detail=f"{err.source}: {problem.message}",
                    fix=problem.fix or "see docs/configuration.md",
                )
                for problem in err.problems
            )
        )
    return DoctorReport(
        checks=(Check(check="config", status=Status.FAILURE, detail=err.message, fix=err.hint),)
    )


# --- pure verdicts -----------------------------------------------------------------------------


def clock_skew_check(
    date_header: str | None, *, sent_at: datetime, received_at: datetime, source: str
) -> Check:
    """Compare a server's ``Date`` header with the local time halfway through the request."""
    if not date_header:
        return Check(
            check="clock",
            status=Status.WARNING,
            detail=f"{source} sent no Date header; the clock could not be compared",
            fix="check the clock by hand (`timedatectl` or `chronyc tracking`)",
        )
    try:
        server = parsedate_to_datetime(date_header)
    except (TypeError, ValueError):
        server = None
    if server is None or server.tzinfo is None:
        return Check(
            check="clock",
            status=Status.WARNING,
            detail=f"{source} sent an unreadable Date header",
            fix="check the clock by hand (`timedatectl` or `chronyc tracking`)",
        )
    local = sent_at + (received_at - sent_at) / 2
    skew = local - server
    # The header has one-second resolution; do not count that (or the round trip) as skew.
    size = max(abs(skew) - timedelta(seconds=1) - (received_at - sent_at) / 2, timedelta())
    direction = "ahead of" if skew > timedelta() else "behind"
    detail = f"the local clock is {size.total_seconds():.0f} s {direction} {source}"
    fix = (
        "synchronise the clock (NTP: `timedatectl set-ntp true`, chrony); Entra ID rejects "
        "tokens whose times are off by more than 5 minutes"
    )
    if size > CLOCK_SKEW_FAILURE:
        return Check(check="clock", status=Status.FAILURE, detail=detail, fix=fix)
    if size > CLOCK_SKEW_WARNING:
        return Check(check="clock", status=Status.WARNING, detail=detail, fix=fix)
    return Check(check="clock", status=Status.OK, detail=f"within a few seconds of {source}")


def clamp_checks(*, org: str, tokens: Mapping[str, Any], issued: list[PatToken]) -> Iterator[Check]:
    """Compare the newest PAT issued for each managed token with its configured ``lifetime``."""
    label = f"policy clamps {org}"
    newest: dict[str, PatToken] = {}
    for token in issued:
        marker = parse_marker(token.display_name)
        if marker is None or marker.token_name not in tokens or token.valid_from is None:
            continue
        current = newest.get(marker.token_name)
        if current is None or (current.valid_from or token.valid_from) < token.valid_from:
            newest[marker.token_name] = token
    clamped = False
    for name, token in sorted(newest.items()):
        lifetime = duration_of(tokens[name], "lifetime")
        if lifetime is None or token.valid_from is None:
            continue
        granted = token.valid_to - token.valid_from
        if lifetime - granted <= CLAMP_SLACK:
            continue
        clamped = True
        days = round(granted / timedelta(days=1))
        detail = (
            f"token {name}: Azure DevOps issued PAT {token.authorization_id} for {days} days, the "
            f"config asks for {lifetime.days} (a maximum PAT lifespan policy shortens it)"
        )
        rotate_before = duration_of(tokens[name], "rotate_before")
        # Compare whole days: the service rounds validTo, so "7 days" may be a few ms short.
        if rotate_before is not None and rotate_before >= timedelta(days=days):
            yield Check(
                check=label,
                status=Status.FAILURE,
                detail=detail + f"; rotate_before ({rotate_before.days}d) is not shorter, so "
                "every run would rotate it again",
                fix=f"set tokens.{name}.lifetime to {days}d or less and rotate_before well below "
                "it",
            )
        else:
            yield Check(
                check=label,
                status=Status.WARNING,
                detail=detail,
                fix=f"set tokens.{name}.lifetime to {days}d or less so schedules match what is "
                "issued",
            )
    if not clamped:
        detail = (
            f"{len(newest)} managed token(s) got their configured lifetime"
            if newest
            else "no PATs issued for managed tokens yet"
        )
        yield Check(check=label, status=Status.OK, detail=detail)


def field_of(body: Any, key: str) -> Any:
    """A key of a token entry, whether still a raw mapping or a parsed model."""
    return body.get(key) if isinstance(body, Mapping) else getattr(body, key, None)


def duration_of(body: Any, key: str) -> timedelta | None:
    value = field_of(body, key)
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except DurationError:
            return None
    return None
