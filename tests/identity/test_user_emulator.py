"""The rotator on the emulated Entra ID: device-code login, silent refresh, why relogin is due."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from patwarden.config.model import load_config
from patwarden.errors import AuthError, ReloginRequired
from patwarden.identity.cache_crypto import generate_cache_key
from patwarden.identity.credential_set import CredentialSet
from patwarden.identity.user import UserCredential
from tests.conftest import RunningEmulator
from tests.identity.emulator_support import config_for, get_token_in_new_process
from tests.support.configs import KEY_ENV
from tests.support.device_codes import ApprovingStream, login
from tests.support.tokens import ADO_DEFAULT

pytestmark = pytest.mark.slow


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    key = generate_cache_key().reveal()
    monkeypatch.setenv(KEY_ENV, key)
    return {KEY_ENV: key}


def logged_in(emulator: RunningEmulator, tmp_path: Path) -> tuple[Path, UserCredential]:
    config = config_for(emulator, tmp_path)
    return config, login(emulator, config, "rotator").user("rotator")


def test_device_code_login_approved_through_the_admin_api(
    emulator: RunningEmulator, tmp_path: Path, key_env: dict[str, str]
) -> None:
    config = config_for(emulator, tmp_path)
    rotator = CredentialSet(load_config(config)).user("rotator")
    out = ApprovingStream(emulator)
    record = rotator.login(out=out, timeout=60)
    rotator_upn = emulator["identities"]["rotator"]["username"]
    assert len(out.approved) == 1
    assert out.approved[0] in out.getvalue()  # the code was shown to the human
    assert record.username.lower() == rotator_upn.lower()
    assert record.tenant_id == emulator["tenant_id"]
    assert record.logged_in_at == record.last_renewed_at
    cache_file = tmp_path / "state" / "rotator.cache"
    assert stat.S_IMODE(cache_file.stat().st_mode) == 0o600
    assert b"RefreshToken" not in cache_file.read_bytes()
    assert rotator.account() == record
    assert rotator.days_until_relogin(record.last_renewed_at) == pytest.approx(90.0)


def test_silent_refresh_in_a_new_process_never_prompts(
    emulator: RunningEmulator, tmp_path: Path, key_env: dict[str, str]
) -> None:
    config, rotator = logged_in(emulator, tmp_path)
    before = rotator.account()
    assert before is not None
    # A scope the login did not cache forces a refresh-token redemption in the new process.
    code, summary, stderr = get_token_in_new_process(config, "rotator", ADO_DEFAULT, env=key_env)
    assert code == 0, summary or stderr
    assert "vso.pats" in summary["scp"].split()
    assert summary["upn"].lower() == emulator["identities"]["rotator"]["username"].lower()
    assert "code" not in stderr.lower()  # nothing asked a human to sign in
    after = rotator.account()
    assert after is not None
    assert after.last_renewed_at > before.last_renewed_at  # a new refresh token was stored
    assert after.logged_in_at == before.logged_in_at
    # The PAT scopes are served from the same cache, again without a prompt.
    code, summary, _ = get_token_in_new_process(config, "rotator", env=key_env)
    assert code == 0
    assert {"vso.pats", "vso.pats_manage"} <= set(summary["scp"].split())


@pytest.mark.parametrize(
    ("admin_call", "code", "words"),
    [
        (("POST", "/refresh-tokens/revoke"), 50173, "grant was revoked"),
        (("POST", "/refresh-tokens/expire"), 700082, "90 days without use"),
        (("POST", "/users/require-mfa"), 50076, "multi-factor authentication is now required"),
    ],
)
def test_each_refusal_has_its_specific_relogin_message(
    emulator: RunningEmulator,
    tmp_path: Path,
    key_env: dict[str, str],
    admin_call: tuple[str, str],
    code: int,
    words: str,
) -> None:
    _, rotator = logged_in(emulator, tmp_path)
    username = emulator["identities"]["rotator"]["username"]
    emulator.admin(*admin_call, json={"username": username})
    with pytest.raises(ReloginRequired) as caught:
        rotator.get_token(ADO_DEFAULT)
    message = str(caught.value)
    assert words in message
    assert "patwarden login --identity rotator" in message
    assert message.endswith(f"identities.md#aadsts{code}")
    assert caught.value.exit_code == 3


def test_sign_in_frequency_refusal(
    emulator: RunningEmulator, tmp_path: Path, key_env: dict[str, str]
) -> None:
    config, _ = logged_in(emulator, tmp_path)
    username = emulator["identities"]["rotator"]["username"]
    emulator.admin("PUT", "/sign-in-frequency", json={"username": username, "seconds": 0})
    exit_code, summary, _ = get_token_in_new_process(config, "rotator", ADO_DEFAULT, env=key_env)
    assert exit_code == 3
    assert summary["error"] == "ReloginRequired"
    assert "sign-in frequency" in summary["message"]
    assert "identities.md#aadsts70043" in summary["message"]


def test_entra_outage_is_not_mistaken_for_a_needed_relogin(
    emulator: RunningEmulator, tmp_path: Path, key_env: dict[str, str]
) -> None:
    config, rotator = logged_in(emulator, tmp_path)
    fault = {"route": r"^POST /[^/]+/oauth2/v2\.0/token$", "kind": "status", "status": 503}
    emulator.admin("POST", "/faults", json=fault)
    with pytest.raises(AuthError) as caught:
        rotator.get_token(ADO_DEFAULT)
    assert not isinstance(caught.value, ReloginRequired)
    assert "temporarily unable" in str(caught.value)
    assert "retry later" in str(caught.value)
    emulator.admin("DELETE", "/faults")
    code, summary, _ = get_token_in_new_process(config, "rotator", ADO_DEFAULT, env=key_env)
    assert code == 0, summary  # the sign-in survived the outage


@pytest.mark.parametrize("kind", ["reset", "hold-drop"])
def test_a_network_failure_reaching_entra_is_an_auth_error_and_keeps_the_sign_in(
    emulator: RunningEmulator, tmp_path: Path, key_env: dict[str, str], kind: str
) -> None:
    """The connection to the token endpoint is reset (MSAL's requests raise): no traceback, no
    relogin demanded, the cache is left as it was."""
    config, rotator = logged_in(emulator, tmp_path)
    route = r"^POST /[^/]+/oauth2/v2\.0/token$"
    if kind == "reset":
        emulator.admin("POST", "/faults", json={"route": route, "kind": "reset"})
        try:
            with pytest.raises(AuthError) as caught:
                rotator.get_token(ADO_DEFAULT)
        finally:
            emulator.admin("DELETE", "/faults")
    else:
        emulator.admin("POST", "/faults", json={"route": route, "kind": "hold"})
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(rotator.get_token, ADO_DEFAULT)
            for _ in range(200):
                if emulator.admin("GET", "/faults/held").json()["held"]:
                    break
                time.sleep(0.05)
            emulator.admin("POST", "/faults/release", json={"action": "drop"})
            emulator.admin("DELETE", "/faults")
            with pytest.raises(AuthError) as caught:
                pending.result(timeout=60)
    message = str(caught.value)
    assert not isinstance(caught.value, ReloginRequired)
    assert "cannot reach Entra ID at " in message
    assert "check network access" in message
    code, summary, _ = get_token_in_new_process(config, "rotator", ADO_DEFAULT, env=key_env)
    assert code == 0, summary  # the sign-in survived


def test_login_as_the_wrong_user_is_refused_and_nothing_is_stored(
    emulator: RunningEmulator, tmp_path: Path, key_env: dict[str, str]
) -> None:
    config = config_for(emulator, tmp_path)
    rotator = CredentialSet(load_config(config)).user("rotator")
    admin_upn = emulator["identities"]["org_admin"]["username"]
    with pytest.raises(AuthError, match="but the config expects") as caught:
        rotator.login(out=ApprovingStream(emulator, username=admin_upn), timeout=60)
    assert not isinstance(caught.value, ReloginRequired)
    assert rotator.account() is None


def test_declined_login(emulator: RunningEmulator, tmp_path: Path, key_env: dict[str, str]) -> None:
    class Declining(ApprovingStream):
        def write(self, text: str) -> int:
            for pending in self.emulator.admin("GET", "/device-codes").json()["value"]:
                self.emulator.admin(
                    "POST", "/device-codes/deny", json={"user_code": pending["user_code"]}
                )
            return len(text)

    rotator = CredentialSet(load_config(config_for(emulator, tmp_path))).user("rotator")
    with pytest.raises(AuthError, match="declined"):
        rotator.login(out=Declining(emulator), timeout=60)


def test_untrusted_tls_is_an_auth_error_not_a_traceback(
    emulator: RunningEmulator, tmp_path: Path, key_env: dict[str, str]
) -> None:
    other_ca = tmp_path / "other-ca.pem"
    import trustme

    trustme.CA().cert_pem.write_to_path(str(other_ca))
    config = config_for(emulator, tmp_path)
    text = config.read_text().replace(emulator.ca_bundle, str(other_ca))
    config.write_text(text)
    rotator = CredentialSet(load_config(config)).user("rotator")
    with pytest.raises(AuthError, match="TLS verification failed") as caught:
        rotator.login(out=ApprovingStream(emulator), timeout=10)
    assert "azure.ca_bundle" in str(caught.value)


_REFRESHER = textwrap.dedent(
    """
    import sys
    from patwarden.config.model import load_config
    from patwarden.identity.credential_set import CredentialSet
    rotator = CredentialSet(load_config(sys.argv[1])).user("rotator")
    for i in range(int(sys.argv[2])):
        # A claims challenge bypasses the access-token cache: every call redeems the refresh token.
        claims = '{"access_token": {"nbf": {"essential": true, "value": "%d"}}}' % i
        rotator.get_token(claims=claims)
    print("ok", flush=True)
    """
)


def test_two_runners_refreshing_at_once_both_succeed_and_leave_a_working_cache(
    emulator: RunningEmulator, tmp_path: Path, key_env: dict[str, str]
) -> None:
    config, rotator = logged_in(emulator, tmp_path)
    before = rotator.account()
    runners = [
        subprocess.Popen(
            [sys.executable, "-c", _REFRESHER, str(config), "4"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **key_env},
        )
        for _ in range(2)
    ]
    for runner in runners:
        out, err = runner.communicate(timeout=120)
        assert runner.returncode == 0, err.decode()
        assert out.strip() == b"ok"
    after = rotator.account()
    assert before is not None
    assert after is not None
    assert after.last_renewed_at > before.last_renewed_at
    code, summary, _ = get_token_in_new_process(config, "rotator", ADO_DEFAULT, env=key_env)
    assert code == 0, summary


def test_browser_sign_in_refused_by_conditional_access_says_why(
    emulator: RunningEmulator, tmp_path: Path, key_env: dict[str, str]
) -> None:
    from tests.support.browser import browser_login_in_process

    config = config_for(emulator, tmp_path)
    emulator.admin("PUT", "/conditional-access", json={"block_location": True})
    with pytest.raises(AuthError) as refused:
        browser_login_in_process(emulator, config)
    assert refused.value.message == (
        "login of identity 'rotator' failed: access was blocked by a Conditional Access policy "
        "(a location outside the allowed networks, or a risk or app condition)"
    )
    assert refused.value.docs is not None
    assert refused.value.docs.endswith("identities.md#aadsts53003")


def test_browser_sign_in_records_the_machine_and_method(
    emulator: RunningEmulator, tmp_path: Path, key_env: dict[str, str]
) -> None:
    import platform

    from tests.support.browser import browser_login_in_process

    config = config_for(emulator, tmp_path)
    browser_login_in_process(emulator, config)
    credentials = CredentialSet(load_config(config))
    try:
        record = credentials.user("rotator").account()
    finally:
        credentials.close()
    assert record is not None
    assert record.sign_in_method == "browser"
    assert record.signed_in_on == platform.node()
