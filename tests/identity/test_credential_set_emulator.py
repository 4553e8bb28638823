"""App identities, Key Vault references and the Key Vault token cache against the emulator."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from patwarden.config.model import load_config
from patwarden.errors import AuthError
from patwarden.identity.cache_crypto import generate_cache_key
from patwarden.identity.cache_generation import RollbackGuard
from patwarden.identity.credential_set import CredentialSet
from patwarden.identity.keyvault import secret_client
from patwarden.identity.keyvault_store import KeyVaultCacheStore
from patwarden.identity.scopes import KEY_VAULT_SCOPE
from tests.conftest import RunningEmulator
from tests.identity.emulator_support import config_for, get_token_in_new_process
from tests.support.configs import KEY_ENV
from tests.support.device_codes import ApprovingStream
from tests.support.tokens import ADO_DEFAULT, claims

pytestmark = pytest.mark.slow


@pytest.fixture
def env(emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        KEY_ENV: generate_cache_key().reveal(),
        "WRITER_SECRET": emulator["identities"]["service_principal"]["client_secret"],
        "LEGACY_PASSWORD": emulator["identities"]["legacy_user"]["password"],
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def test_service_principal_with_secret_and_with_certificate(
    emulator: RunningEmulator, tmp_path: Path, env: dict[str, str]
) -> None:
    sp = emulator["identities"]["service_principal"]
    config = config_for(
        emulator,
        tmp_path,
        identities={
            "cert": {
                "kind": "service_principal",
                "client_id": sp["client_id"],
                "certificate": {"path": sp["certificate_path"]},
            }
        },
    )
    creds = CredentialSet(load_config(config))
    for name in ("writer", "cert"):
        token = creds.get(name).get_token(ADO_DEFAULT)
        issued = claims(token.token)
        assert issued["appid"] == sp["client_id"] or issued.get("azp") == sp["client_id"]
        assert "scp" not in issued  # an app token: exactly why it cannot be the rotator
    creds.close()


def test_wrong_client_secret_is_an_auth_error(
    emulator: RunningEmulator, tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.core.exceptions import ClientAuthenticationError

    monkeypatch.setenv("WRITER_SECRET", "wrong")
    creds = CredentialSet(load_config(config_for(emulator, tmp_path)))
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        creds.get("writer").get_token(ADO_DEFAULT)


def test_legacy_password_flow_works_and_warns_on_every_use(
    emulator: RunningEmulator, tmp_path: Path, env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    legacy = emulator["identities"]["legacy_user"]
    config = config_for(
        emulator,
        tmp_path,
        identities={
            "old": {
                "kind": "legacy_password",
                "client_id": emulator["identities"]["public_client"]["client_id"],
                "username": legacy["username"],
                "password": {"env": "LEGACY_PASSWORD"},
                "legacy_password_flow": True,
            }
        },
    )
    credential = CredentialSet(load_config(config)).get("old")
    with caplog.at_level(logging.WARNING):
        first = credential.get_token()
        credential.get_token()
    assert "vso.pats" in str(claims(first.token)["scp"]).split()
    warnings = [m for m in (r.getMessage() for r in caplog.records) if "(ROPC)" in m]
    assert len(warnings) == 2
    assert all("deprecated" in w and "MFA" in w for w in warnings)
    assert legacy["password"] not in caplog.text


def test_legacy_password_flow_blocked_by_mfa(
    emulator: RunningEmulator, tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    username, password = "mfa-user@contoso.example", "correct-horse-battery"
    emulator.admin(
        "POST", "/users", json={"username": username, "password": password, "mfa_required": True}
    )
    monkeypatch.setenv("LEGACY_PASSWORD", password)
    config = config_for(
        emulator,
        tmp_path,
        identities={
            "old": {
                "kind": "legacy_password",
                "client_id": emulator["identities"]["public_client"]["client_id"],
                "username": username,
                "password": {"env": "LEGACY_PASSWORD"},
                "legacy_password_flow": True,
            }
        },
    )
    with pytest.raises(AuthError) as caught:
        CredentialSet(load_config(config)).get("old").get_token()
    message = str(caught.value)
    assert "could not sign in with the password flow" in message
    assert "multi-factor authentication is now required" in message
    assert password not in message


def test_key_vault_secret_reference(
    emulator: RunningEmulator, tmp_path: Path, env: dict[str, str]
) -> None:
    vault = emulator["key_vault_url"]
    sp = emulator["identities"]["service_principal"]
    config = config_for(
        emulator,
        tmp_path,
        identities={
            "from-kv": {
                "kind": "service_principal",
                "client_id": sp["client_id"],
                "client_secret": {
                    "key_vault": {"vault_url": vault, "secret": "sp-secret", "identity": "writer"}
                },
            }
        },
    )
    creds = CredentialSet(load_config(config))
    client = secret_client(
        vault_url=vault, credential=creds.get("writer"), azure=creds.config.azure
    )
    client.set_secret("sp-secret", sp["client_secret"])
    token = creds.get("from-kv").get_token(KEY_VAULT_SCOPE)
    assert token.token


def test_rotator_cache_in_key_vault_survives_a_new_process(
    emulator: RunningEmulator, tmp_path: Path, env: dict[str, str]
) -> None:
    vault = emulator["key_vault_url"]
    cache = {"kind": "key_vault", "vault_url": vault, "secret": "rotator-cache"}
    cache["identity"] = "writer"
    config = config_for(emulator, tmp_path, rotator={"cache": {**cache, "key": {"env": KEY_ENV}}})
    creds = CredentialSet(load_config(config))
    rotator = creds.user("rotator")
    record = rotator.login(out=ApprovingStream(emulator), timeout=60)
    guard = rotator.store  # the Key Vault store behind the rollback guard (cache_generation)
    assert isinstance(guard, RollbackGuard)
    assert isinstance(guard.inner, KeyVaultCacheStore)
    assert not (tmp_path / "state" / "rotator.cache").exists()  # no cache on disk
    assert guard.seen() == 1  # only its generation record is
    client = secret_client(
        vault_url=vault, credential=creds.get("writer"), azure=creds.config.azure
    )
    stored = client.get_secret("rotator-cache")
    assert stored.value is not None
    assert "RefreshToken" not in stored.value  # encrypted with the configured key
    code, summary, stderr = get_token_in_new_process(config, "rotator", ADO_DEFAULT, env=env)
    assert code == 0, summary or stderr
    after = rotator.account()
    assert after is not None
    assert after.last_renewed_at > record.last_renewed_at
    assert rotator.logout() is True
    assert rotator.account() is None
    versions = list(client.list_properties_of_secret_versions("rotator-cache"))
    assert [v.enabled for v in versions].count(True) == 1  # only the empty tombstone stays enabled


def test_workload_identity_exchanges_a_projected_token(
    emulator: RunningEmulator, tmp_path: Path, env: dict[str, str]
) -> None:
    sp = emulator["identities"]["service_principal"]
    subject = "system:serviceaccount:flux-system:patwarden"
    emulator.admin(
        "POST", "/federated-credentials", json={"client_id": sp["client_id"], "subject": subject}
    )
    minted = emulator.admin("POST", "/federated-tokens", json={"subject": subject}).json()
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(minted["token"])
    config = config_for(
        emulator,
        tmp_path,
        identities={
            "wif": {
                "kind": "workload_identity",
                "client_id": sp["client_id"],
                "token_file": str(token_file),
            }
        },
    )
    token = CredentialSet(load_config(config)).get("wif").get_token(ADO_DEFAULT)
    issued = claims(token.token)
    assert sp["client_id"] in (issued.get("appid"), issued.get("azp"))
