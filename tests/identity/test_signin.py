"""What `login` records and `doctor` reports about a sign-in (no I/O)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

from patwarden.identity.account import AccountRecord
from patwarden.identity.signin import login_failure, origin, token_scopes

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def _record(**extra: object) -> AccountRecord:
    fields: dict[str, object] = {
        "home_account_id": "oid.tid",
        "username": "svc@contoso.example",
        "tenant_id": "tid",
        "client_id": "cid",
        "authority": "https://login.example/tid",
        "logged_in_at": AT,
        "last_renewed_at": AT,
        **extra,
    }
    return AccountRecord(**fields)  # type: ignore[arg-type]


def test_origin_names_machine_method_time_and_hand_over() -> None:
    record = _record(
        signed_in_on="ws-17",
        sign_in_method="browser",
        handed_over_to="runner-3",
        handed_over_at=datetime(2026, 3, 1, 10, 0, tzinfo=UTC),
    )
    assert origin(record) == (
        "signed in on ws-17 with the browser at 2026-03-01 09:30 UTC, handed over to runner-3 "
        "at 2026-03-01 10:00 UTC"
    )
    assert origin(_record()) == (
        "signed in on an unrecorded machine interactively at 2026-03-01 09:30 UTC"
    )


def test_a_record_survives_json_with_and_without_the_new_fields() -> None:
    record = _record(signed_in_on="ws-17", sign_in_method="device_code")
    assert AccountRecord.from_json(json.loads(json.dumps(record.to_json()))) == record
    old = {k: v for k, v in _record().to_json().items() if k not in ("signed_in_on",)}
    assert AccountRecord.from_json(old).signed_in_on == ""


def _jwt(payload: dict[str, object]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"e30.{body}.sig"


def test_token_scopes_reads_scp() -> None:
    assert token_scopes(_jwt({"scp": "vso.pats vso.pats_manage"})) == (
        "vso.pats",
        "vso.pats_manage",
    )
    assert token_scopes(_jwt({"roles": ["x"]})) == ()
    assert token_scopes("opaque") == ()


def test_a_device_code_request_blocked_by_policy_suggests_the_browser() -> None:
    refused = {"error": "access_denied", "error_codes": [53003]}
    err = login_failure("rotator", refused, context="device_code_request")
    assert "blocks the device-code flow" in err.message
    assert err.hint is not None
    assert "patwarden login --identity rotator --browser" in err.hint
    assert err.docs is not None
    assert err.docs.endswith("identities.md#device-code-blocked")
    # The same code after the sign-in (location, risk) is explained as such.
    elsewhere = login_failure("rotator", refused)
    assert "a location outside the allowed networks" in elsewhere.message


def test_declined_and_timed_out_sign_ins_say_so() -> None:
    declined = login_failure("rotator", {"error": "authorization_declined", "error_codes": [70000]})
    assert (
        declined.message
        == "login of identity 'rotator' failed: the sign-in was declined in the browser"
    )
    timeout = login_failure("rotator", {"error": "timeout"})
    assert "no answer came back from the browser in time" in timeout.message


def test_a_denied_mfa_prompt_names_the_code() -> None:
    denied = {
        "error": "access_denied",
        "error_description": "AADSTS500121: Authentication failed during strong authentication.",
    }
    err = login_failure("rotator", denied)
    assert (
        err.message == "login of identity 'rotator' failed: the sign-in was refused (AADSTS500121)"
    )
