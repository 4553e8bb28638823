"""Pure helpers of the emulated Azure DevOps: dates, continuation tokens, scopes, policies."""

from __future__ import annotations

import datetime as dt

import pytest

from patwarden_emulator.devops.policies import Policies, policies_from_json
from patwarden_emulator.devops.scopes import invalid_scopes
from patwarden_emulator.devops.state import from_us, to_us
from patwarden_emulator.devops.wire import (
    format_seven,
    format_trimmed,
    parse_datetime,
    parse_pat_continuation,
    pat_continuation,
    sql_datetime_round,
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2026-07-01T00:00:23.319Z", "2026-07-01T00:00:23.32Z"),
        ("2026-07-01T00:00:00Z", "2026-07-01T00:00:00Z"),
        ("2026-07-01T00:00:00.0018Z", "2026-07-01T00:00:00.003Z"),
        ("2026-07-01T00:00:00.9999Z", "2026-07-01T00:00:01Z"),
        ("2026-07-01T02:00:00.5+02:00", "2026-07-01T00:00:00.5Z"),
    ],
)
def test_valid_to_rounds_like_sql_datetime(given: str, expected: str) -> None:
    parsed = parse_datetime(given)
    assert parsed is not None
    assert format_trimmed(sql_datetime_round(parsed)) == expected


def test_valid_from_has_seven_fractional_digits() -> None:
    moment = dt.datetime(2026, 6, 1, 9, 12, 44, 103333, tzinfo=dt.UTC)
    assert format_seven(moment) == "2026-06-01T09:12:44.1033330Z"


def test_parse_datetime_accepts_dotnet_precision_and_rejects_junk() -> None:
    assert parse_datetime("2026-06-01T09:12:44.1033333Z") == dt.datetime(
        2026, 6, 1, 9, 12, 44, 103333, tzinfo=dt.UTC
    )
    assert parse_datetime("2026-06-01") == dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    assert parse_datetime("tomorrow") is None
    assert parse_datetime(None) is None


def test_microsecond_storage_round_trips() -> None:
    moment = dt.datetime(2031, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)
    assert from_us(to_us(moment)) == moment


def test_pat_continuation_token_format() -> None:
    assert pat_continuation(21) == "MjEtcGF0YXBpdG9rZW4="
    assert parse_pat_continuation("MjEtcGF0YXBpdG9rZW4=") == 21
    assert parse_pat_continuation("bm9wZQ==") is None
    assert parse_pat_continuation("%%%") is None


def test_entra_only_scopes_are_not_pat_scopes() -> None:
    assert invalid_scopes("vso.code vso.pats user_impersonation") == [
        "vso.pats",
        "user_impersonation",
    ]


def test_policy_documents_merge_and_validate() -> None:
    merged = policies_from_json(Policies(), {"max_lifespan_days": 7, "allowlist": ["A@x.example"]})
    assert merged.max_lifespan_days == 7
    assert merged.is_exempt("a@X.example")
    assert policies_from_json(merged, {"restrict_global": True}).max_lifespan_days == 7
    for bad in ({"nope": 1}, {"revoke_status": 201}, {"restrict_global": "yes"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            policies_from_json(Policies(), bad)
