"""The rotator credential without a network: not-logged-in, foreign caches, relogin clock, logout.

Device-code login, silent refresh and Entra refusals run against the emulator in
test_identity_emulator.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from patwarden.config.model import load_config
from patwarden.errors import ReloginRequired
from patwarden.identity.account import AccountRecord, CacheEnvelope
from patwarden.identity.cache_crypto import generate_cache_key
from patwarden.identity.credential_set import CredentialSet
from patwarden.identity.user import UserCredential

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "11111111-2222-3333-4444-555555555555"
T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def rotator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> UserCredential:
    monkeypatch.setenv("PATWARDEN_CACHE_KEY", generate_cache_key().reveal())
    config_file = tmp_path / "patwarden.yaml"
    config_file.write_text(
        yaml.safe_dump(
            {
                "organization": "contoso",
                "azure": {"tenant_id": TENANT},
                "state_dir": "state",
                "identities": {
                    "rotator": {
                        "kind": "user",
                        "client_id": CLIENT,
                        "sign_in_frequency": "30d",
                        "cache": {"key": {"env": "PATWARDEN_CACHE_KEY"}},
                    }
                },
            }
        )
    )
    config_file.chmod(0o600)
    return CredentialSet(load_config(config_file)).user("rotator")


def record(**changes: object) -> AccountRecord:
    base = AccountRecord(
        home_account_id="oid.tid",
        username="svc-patwarden@contoso.com",
        tenant_id=TENANT,
        client_id=CLIENT,
        authority=f"https://login.microsoftonline.com/{TENANT}",
        logged_in_at=T0,
        last_renewed_at=T0 + timedelta(days=20),
    )
    return AccountRecord(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def test_not_logged_in_asks_for_login_without_touching_the_network(rotator: UserCredential) -> None:
    with pytest.raises(ReloginRequired) as caught:
        rotator.get_token()
    message = str(caught.value)
    assert "identity 'rotator' is not logged in" in message
    assert "patwarden login --identity rotator" in message
    assert message.endswith("identities.md#not-logged-in")
    assert caught.value.exit_code == 3
    assert rotator.account() is None
    assert rotator.days_until_relogin(T0) is None


def test_cache_for_another_app_registration_needs_a_new_login(rotator: UserCredential) -> None:
    other = "99999999-2222-3333-4444-555555555555"
    rotator.store.save(CacheEnvelope(account=record(client_id=other), msal_cache="{}"))
    with pytest.raises(ReloginRequired, match="created for another app registration"):
        rotator.get_token()


def test_days_until_relogin_uses_the_stored_record_and_sign_in_frequency(
    rotator: UserCredential,
) -> None:
    rotator.store.save(CacheEnvelope(account=record(), msal_cache="{}"))
    # 90 days after the last renewal would be day 110; the 30-day sign-in frequency ends on day 30.
    assert rotator.days_until_relogin(T0 + timedelta(days=10)) == pytest.approx(20.0)
    deadline = rotator.relogin_deadline()
    assert deadline is not None
    assert deadline.cause.value == "sign_in_frequency"


def test_logout_removes_cache_and_record(rotator: UserCredential) -> None:
    rotator.store.save(CacheEnvelope(account=record(), msal_cache="{}"))
    assert rotator.account() == record()
    assert rotator.logout() is True
    assert rotator.account() is None
    assert rotator.logout() is False


def test_repr_shows_identity_not_secrets(rotator: UserCredential) -> None:
    assert repr(rotator) == f"UserCredential(identity='rotator', client_id='{CLIENT}')"
