"""Each Conditional Access switch of the emulator, seen from `login`, `rotate` and `doctor`: its own
message, exit code 3, and no PAT created; the CAE claims challenge retried exactly once."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.support import Run, cli, let_access_tokens_expire, logged_requests, start_login
from tests.conftest import RunningEmulator
from tests.support.browser import browser_login_in_process
from tests.support.configs import sink_dir, write_config
from tests.support.device_codes import approve_next_device_code, login_in_process
from tests.support.issued import assert_no_secret_in

pytestmark = pytest.mark.slow


def _rotator(emulator: RunningEmulator) -> str:
    return str(emulator["identities"]["rotator"]["username"])


def _switch(**body: object) -> Callable[[RunningEmulator], None]:
    def apply(emulator: RunningEmulator) -> None:
        emulator.admin("PUT", "/conditional-access", json=body)

    return apply


def _for_rotator(method: str, path: str, **body: object) -> Callable[[RunningEmulator], None]:
    def apply(emulator: RunningEmulator) -> None:
        emulator.admin(method, path, json={"username": _rotator(emulator), **body})

    return apply


def _disable(emulator: RunningEmulator) -> None:
    emulator.admin("PATCH", f"/users/{_rotator(emulator)}", json={"enabled": False})


@dataclass(frozen=True)
class Case:
    """A switch, what `login` says then (None: a fresh sign-in satisfies it), what refreshes say."""

    apply: Callable[[RunningEmulator], None]
    login: str | None
    refresh: str
    session: str = "browser"  # how the rotator signed in before the switch


CASES = {
    "block device code": Case(
        _switch(block_device_code=True),
        login="a Conditional Access policy blocks the device-code flow in this tenant",
        refresh="this sign-in was made with a device code",
        session="device_code",
    ),
    "sign-in frequency": Case(
        _for_rotator("PUT", "/sign-in-frequency", minutes=0),
        login=None,
        refresh="a Conditional Access sign-in frequency policy requires a fresh interactive",
    ),
    "compliant device": Case(
        _switch(require_compliant_device=True),
        login="requires a compliant (Intune-managed) device",
        refresh="requires a compliant (Intune-managed) device",
    ),
    "blocked location": Case(
        _switch(block_location=True),
        login="a location outside the allowed networks",
        refresh="a location outside the allowed networks",
    ),
    "token protection": Case(
        _switch(token_protection=True),
        login="a token protection (sign-in session binding) policy applies",
        refresh="a token protection (sign-in session binding) policy applies",
    ),
    "sessions revoked": Case(
        _for_rotator("POST", "/refresh-tokens/revoke"),
        login=None,
        refresh="an admin revoked the user's sessions",
    ),
    "password reset": Case(
        _for_rotator("POST", "/users/reset-password"),
        login=None,
        refresh="the password was changed or reset",
    ),
    "account disabled": Case(
        _disable, login="the user account is disabled", refresh="the user account is disabled"
    ),
}


def _config(emulator: RunningEmulator, tmp_path: Path) -> Path:
    token = {
        "scopes": ["vso.code"],
        "lifetime": "30d",
        "rotate_before": "7d",
        "sinks": [{"kind": "file", "path": str(sink_dir(tmp_path) / "app.pat")}],
    }
    return write_config(emulator, tmp_path, tokens={"app": token})


def _login(emulator: RunningEmulator, config: Path, *, approve: bool) -> Run:
    process = start_login(config)
    if approve:
        approve_next_device_code(emulator, process)
    stdout, stderr = process.communicate(timeout=60)
    return Run(process.returncode, stdout, stderr)


def _pats_created(emulator: RunningEmulator) -> list[str]:
    """PAT creates the emulator answered with success (request log), checked against the PATs
    the rotator owns (admin API)."""
    created = [
        r["path"]
        for r in logged_requests(emulator)
        if r["method"] == "POST" and "/_apis/tokens/pats" in r["path"] and r["status"] == 200
    ]
    owned = emulator.admin("GET", "/pats", params={"username": _rotator(emulator)}).json()
    assert len(owned["value"]) >= len(created)
    return created


@pytest.mark.parametrize("name", list(CASES))
def test_each_switch_has_its_message_and_exit_code(
    emulator: RunningEmulator, tmp_path: Path, name: str
) -> None:
    case = CASES[name]
    config = _config(emulator, tmp_path)
    if case.session == "browser":
        browser_login_in_process(emulator, config)
    else:
        login_in_process(emulator, config)
    let_access_tokens_expire(config)  # a refresh is where Conditional Access bites
    case.apply(emulator)
    emulator.admin("DELETE", "/requests")

    rotated = cli("rotate", config=config)
    assert rotated.code == 3, rotated.output
    assert case.refresh in rotated.stderr, rotated.output
    assert "Traceback" not in rotated.stderr
    doctor = cli("doctor", config=config)
    assert doctor.code == 3, doctor.output
    assert case.refresh in doctor.stdout, doctor.stdout
    assert _pats_created(emulator) == []

    login = _login(emulator, config, approve=name != "block device code")
    if case.login is None:  # a fresh interactive sign-in satisfies this policy
        assert login.code == 0, login.stderr
    else:
        assert login.code == 3, login.output
        assert "Error: login of identity 'rotator' failed: " in login.stderr
        assert case.login in login.stderr, login.stderr
        assert "Traceback" not in login.stderr
    if name == "block device code":
        assert "Fix: sign in with the browser instead: run `patwarden login --identity " in (
            login.stderr
        )
    assert _pats_created(emulator) == []
    assert_no_secret_in(emulator, rotated.output, doctor.output, login.output)


def _cae_log(emulator: RunningEmulator) -> list[tuple[str, str, int]]:
    return [
        (r["method"], r["path"].split("?")[0], r["status"])
        for r in logged_requests(emulator)
        if "/_apis/tokens/pats" in r["path"] or r["path"].endswith("/oauth2/v2.0/token")
    ]


def test_a_cae_challenge_is_retried_once_with_a_fresh_token(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    config = _config(emulator, tmp_path)
    browser_login_in_process(emulator, config)  # its access token is still valid (an hour)
    time.sleep(1.1)  # the CAE event must be in a later second than the token's iat
    emulator.admin("POST", "/cae-events", json={"username": _rotator(emulator)})
    emulator.admin("DELETE", "/requests")

    rotated = cli("rotate", "-o", "json", config=config)
    assert rotated.code == 0, rotated.output
    calls = _cae_log(emulator)
    # The first PAT API call is refused with the challenge, the refresh token is redeemed once
    # (with the claims), the call is resent once and answered; one PAT is created.
    assert calls[0][2] == 401, calls
    assert calls[1][1].endswith("/oauth2/v2.0/token"), calls
    assert calls[1][2] == 200, calls
    assert [c for c in calls if c[2] == 401] == [calls[0]], calls
    assert len(_pats_created(emulator)) == 1


def test_a_cae_challenge_after_revocation_stops_with_the_relogin_reason(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    config = _config(emulator, tmp_path)
    browser_login_in_process(emulator, config)
    time.sleep(1.1)
    emulator.admin("POST", "/refresh-tokens/revoke", json={"username": _rotator(emulator)})
    emulator.admin("DELETE", "/requests")

    rotated = cli("rotate", "-o", "json", config=config)
    # Every token failed for one reason, the rotator's sign-in: exit 3 (sign-in), not 8, and the
    # document and stderr say why and how to fix it.
    assert rotated.code == 3, rotated.output
    document = json.loads(rotated.stdout)
    (token,) = document["tokens"]
    assert token["outcome"] == "failed"
    assert "cannot get a token silently: the grant was revoked" in token["reason"]
    assert document["exit_code"] == 3
    assert document["error"]["type"] == "ReloginRequired"
    assert "patwarden login" in document["error"]["hint"]
    assert "the grant was revoked" in rotated.stderr
    calls = _cae_log(emulator)
    # Each PAT API call is challenged once; the refresh with the claims is refused (50173) and
    # the call is not resent: no loop, nothing created.
    pat_calls = [c for c in calls if "/_apis/tokens/pats" in c[1]]
    assert pat_calls, calls
    assert all(c[2] == 401 for c in pat_calls), calls
    assert len(pat_calls) == len({(c[0], c[1]) for c in pat_calls}), calls
    refreshes = [c for c in calls if c[1].endswith("/oauth2/v2.0/token")]
    assert refreshes, calls
    assert len(refreshes) <= len(pat_calls), calls  # MSAL drops a refused refresh token
    assert all(c[2] == 400 for c in refreshes), calls
    assert _pats_created(emulator) == []
    assert emulator.admin("GET", "/pats", params={"username": _rotator(emulator)}).json() == {
        "value": []
    }
