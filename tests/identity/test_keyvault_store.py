"""The Key Vault token cache against the emulated vault: encryption, races, logout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from patwarden.config.model import load_config
from patwarden.errors import AuthError
from patwarden.identity.account import AccountRecord, CacheEnvelope
from patwarden.identity.cache_crypto import CacheCipher, decode_cache_key, generate_cache_key
from patwarden.identity.credential_set import CredentialSet
from patwarden.identity.keyvault import is_azure_vault_host, secret_client
from patwarden.identity.keyvault_store import KeyVaultCacheStore
from tests.conftest import RunningEmulator
from tests.identity.emulator_support import config_for

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
REFRESH_TOKEN = "0.AXkA-refresh-token-that-must-not-be-readable-in-the-vault"


def envelope(renewed: datetime, msal: str = "{}") -> CacheEnvelope:
    record = AccountRecord(
        home_account_id="oid.tid",
        username="svc@contoso.com",
        tenant_id="tid",
        client_id="cid",
        authority="https://login.example/tid",
        logged_in_at=T0,
        last_renewed_at=renewed,
    )
    return CacheEnvelope(account=record, msal_cache=msal)


@pytest.fixture
def stores(
    emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[KeyVaultCacheStore, KeyVaultCacheStore, CacheCipher | None]:
    monkeypatch.setenv(
        "WRITER_SECRET", emulator["identities"]["service_principal"]["client_secret"]
    )
    creds = CredentialSet(load_config(config_for(emulator, tmp_path)))
    vault = emulator["key_vault_url"]
    key = generate_cache_key()
    cipher = CacheCipher(key=decode_cache_key(key, source="test"), source="test")

    def store() -> KeyVaultCacheStore:
        return KeyVaultCacheStore(
            client_factory=lambda: secret_client(
                vault_url=vault, credential=creds.get("writer"), azure=creds.config.azure
            ),
            vault_url=vault,
            secret="rotator-cache",
            identity="writer",
            cipher=cipher,
        )

    return store(), store(), cipher


def test_host_check_for_the_challenge_resource() -> None:
    assert is_azure_vault_host("https://ops-kv.vault.azure.net")
    assert is_azure_vault_host("https://x.vault.usgovcloudapi.net/")
    assert not is_azure_vault_host("https://127.0.0.1:8443")
    assert not is_azure_vault_host("https://vault.azure.net.evil.example")


@pytest.mark.slow
def test_encrypted_round_trip(
    stores: tuple[KeyVaultCacheStore, KeyVaultCacheStore, CacheCipher | None],
) -> None:
    first, second, _ = stores
    assert first.load() is None
    first.save(envelope(T0, msal=f'{{"rt": "{REFRESH_TOKEN}"}}'))
    raw = first.client.get_secret("rotator-cache").value
    assert raw is not None
    assert REFRESH_TOKEN not in raw
    assert second.load() == envelope(T0, msal=f'{{"rt": "{REFRESH_TOKEN}"}}')


@pytest.mark.slow
def test_a_newer_renewal_stored_meanwhile_is_kept(
    stores: tuple[KeyVaultCacheStore, KeyVaultCacheStore, CacheCipher | None],
) -> None:
    slow, fast, _ = stores
    slow.save(envelope(T0))
    assert slow.load() == envelope(T0)
    assert fast.load() == envelope(T0)
    fast.save(envelope(T0 + timedelta(hours=2), msal='{"from": "fast"}'))
    slow.save(envelope(T0 + timedelta(hours=1), msal='{"from": "slow"}'))  # older: must not win
    assert fast.load() == envelope(T0 + timedelta(hours=2), msal='{"from": "fast"}')


@pytest.mark.slow
def test_unencrypted_store_reads_but_encrypted_needs_the_key(
    emulator: RunningEmulator,
    stores: tuple[KeyVaultCacheStore, KeyVaultCacheStore, CacheCipher | None],
) -> None:
    sealed_store, _, _ = stores
    sealed_store.save(envelope(T0))
    keyless = KeyVaultCacheStore(
        client_factory=lambda: sealed_store.client,
        vault_url=sealed_store.vault_url,
        secret="rotator-cache",
        identity="writer",
        cipher=None,
    )
    with pytest.raises(AuthError, match=r"encrypted .* but no cache key is configured"):
        keyless.load()
    plain = KeyVaultCacheStore(
        client_factory=lambda: sealed_store.client,
        vault_url=sealed_store.vault_url,
        secret="plain-cache",
        identity="writer",
        cipher=None,
    )
    plain.save(envelope(T0))
    assert plain.load() == envelope(T0)


@pytest.mark.slow
def test_a_plaintext_cache_swapped_into_a_keyed_vault_secret_is_refused(
    emulator: RunningEmulator,
    stores: tuple[KeyVaultCacheStore, KeyVaultCacheStore, CacheCipher | None],
) -> None:
    # Issue 11, item 4: whoever may write the secret stores a plaintext cache of their own account.
    sealed_store, _, _ = stores
    sealed_store.save(envelope(T0))
    sealed_store.client.set_secret(
        "rotator-cache", envelope(T0 + timedelta(hours=1)).to_bytes().decode()
    )
    with pytest.raises(AuthError, match="unencrypted token cache, but a cache key is configured"):
        sealed_store.load()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("route", "status", "action", "expected"),
    [
        ("^GET /secrets/rotator-cache", 403, "load", r"identity 'writer' may not read secret"),
        ("^PUT /secrets/rotator-cache", 403, "save", r"identity 'writer' may not write secret"),
        ("^PUT /secrets/rotator-cache", 409, "save", r"Key Vault refused to write .*\(HTTP 409"),
        ("^PUT /secrets/rotator-cache", 403, "delete", r"identity 'writer' may not clear secret"),
        ("^GET /secrets/rotator-cache", 400, "load", r"Key Vault refused to read .*\(HTTP 400"),
    ],
)
def test_key_vault_errors_of_the_cache_are_clear_and_keep_what_was_stored(
    emulator: RunningEmulator,
    stores: tuple[KeyVaultCacheStore, KeyVaultCacheStore, CacheCipher | None],
    route: str,
    status: int,
    action: str,
    expected: str,
) -> None:
    store, reader, _ = stores
    store.save(envelope(T0, msal=f'{{"rt": "{REFRESH_TOKEN}"}}'))
    store.load()
    emulator.admin("POST", "/faults", json={"route": route, "kind": "status", "status": status})
    try:
        call = {
            "load": store.load,
            "save": lambda: store.save(envelope(T0 + timedelta(hours=1))),
            "delete": store.delete,
        }[action]
        with pytest.raises(AuthError, match=expected) as failed:
            call()
    finally:
        emulator.admin("DELETE", "/faults")
    assert REFRESH_TOKEN not in str(failed.value)
    assert "rotator-cache" in str(failed.value)
    # Nothing was lost: the cache written before the failure is still there, whole.
    assert reader.load() == envelope(T0, msal=f'{{"rt": "{REFRESH_TOKEN}"}}')


@pytest.mark.slow
def test_an_unreachable_vault_is_named_with_network_advice() -> None:
    from azure.core.credentials import AccessToken

    from patwarden.config.schema import AzureConfig

    class Static:
        def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
            return AccessToken("t", 2**31)

    closed = "https://127.0.0.1:9"  # nothing listens on the discard port
    store = KeyVaultCacheStore(
        client_factory=lambda: secret_client(
            vault_url=closed,
            credential=Static(),
            azure=AzureConfig(custom_vault_hosts={"127.0.0.1": "emulator"}),
        ),
        vault_url=closed,
        secret="rotator-cache",
        identity="writer",
        cipher=None,
    )
    with pytest.raises(AuthError, match="cannot reach Key Vault to read secret") as failed:
        store.load()
    assert "vault_url" in (failed.value.hint or "")


def test_an_older_key_vault_version_set_again_is_refused(
    stores: tuple[KeyVaultCacheStore, KeyVaultCacheStore, CacheCipher | None], tmp_path: Path
) -> None:
    # The rollback: whoever may `set` the cache secret copies an older version's value back.
    from patwarden.identity.cache_generation import CacheRolledBack, guarded

    first, _, _ = stores
    guard = guarded(first, state_dir=tmp_path / "state", identity="rotator")
    guard.save(envelope(T0))
    old_value = first.client.get_secret("rotator-cache").value
    assert old_value is not None
    loaded = guard.load()
    assert loaded is not None
    guard.save(envelope(T0 + timedelta(hours=1)))
    first.client.set_secret(
        "rotator-cache", old_value, content_type="application/x-patwarden-token-cache+aes256gcm"
    )
    assert first.load() is not None  # it opens: same key, same identity binding
    with pytest.raises(CacheRolledBack, match="generation 1"):
        guard.load()
