"""Handing a sign-in over as a sealed file: what is refused before any network call."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from patwarden.errors import AuthError
from patwarden.identity.account import AccountRecord, CacheEnvelope
from patwarden.identity.cache_crypto import CacheCipher
from patwarden.identity.cache_store import EncryptedFileStore
from patwarden.identity.handover import SealedFile, export_target, import_sign_in
from patwarden.identity.user import UserCredential, UserSettings

NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
SETTINGS = UserSettings(
    name="rotator",
    client_id="11111111-1111-1111-1111-111111111111",
    tenant_id="tid",
    authority_host="https://login.example",
    ca_bundle=None,
    instance_discovery=False,
)


class _NoKeyStore:
    description = "Key Vault secret 'c' in https://kv.example"
    cipher = None


def _user(tmp_path: Path, cipher: CacheCipher | None) -> UserCredential:
    def open_store(create: bool) -> EncryptedFileStore | _NoKeyStore:
        if cipher is None:
            return _NoKeyStore()
        return EncryptedFileStore(path=tmp_path / "state" / "rotator.cache", cipher=cipher)

    return UserCredential(settings=SETTINGS, open_store=open_store, clock=lambda: NOW)  # type: ignore[arg-type]


def _cipher() -> CacheCipher:
    return CacheCipher(key=os.urandom(32), source="test")


def _envelope(client_id: str) -> CacheEnvelope:
    record = AccountRecord(
        home_account_id="oid.tid",
        username="svc@contoso.example",
        tenant_id="tid",
        client_id=client_id,
        authority=SETTINGS.authority,
        logged_in_at=NOW,
        last_renewed_at=NOW,
        signed_in_on="ws-17",
        sign_in_method="browser",
    )
    return CacheEnvelope(account=record, msal_cache="{}")


def test_export_needs_a_cache_key(tmp_path: Path) -> None:
    with pytest.raises(AuthError) as refused:
        export_target(_user(tmp_path, None), tmp_path / "x.cache")
    assert "has no cache key, so its sign-in cannot be handed over sealed" in refused.value.message


def test_the_export_is_sealed_and_private(tmp_path: Path) -> None:
    cipher = _cipher()
    target = export_target(_user(tmp_path, cipher), tmp_path / "out" / "x.cache")
    assert target.description == f"sealed file {tmp_path / 'out' / 'x.cache'}"
    with target.locked():
        target.save(_envelope(SETTINGS.client_id))
    assert not (tmp_path / "out" / "x.cache.lock").exists()
    sealed = (tmp_path / "out" / "x.cache").read_bytes()
    assert sealed.startswith(b"PWCACHE")
    assert b"svc@contoso.example" not in sealed
    assert (tmp_path / "out" / "x.cache").stat().st_mode & 0o777 == 0o600


def test_import_refuses_another_app_registration_before_any_call(tmp_path: Path) -> None:
    cipher = _cipher()
    path = tmp_path / "x.cache"
    SealedFile(path=path, cipher=cipher).save(_envelope("22222222-2222-2222-2222-222222222222"))
    with pytest.raises(AuthError) as refused:
        import_sign_in(_user(tmp_path, cipher), path, now=NOW)
    assert "was made for another app registration or tenant" in refused.value.message
    assert not (tmp_path / "state" / "rotator.cache").exists()


def test_import_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AuthError) as refused:
        import_sign_in(_user(tmp_path, _cipher()), tmp_path / "nothing.cache", now=NOW)
    assert refused.value.message == f"no exported sign-in at {tmp_path / 'nothing.cache'}"
