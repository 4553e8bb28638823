"""A token cache rolled back to an older copy of itself is refused (issue 11, item 4)."""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

import pytest

from patwarden.identity.cache_crypto import (
    CacheCipher,
    decode_cache_key,
    generate_cache_key,
    identity_binding,
)
from patwarden.identity.cache_generation import CacheRolledBack, RollbackGuard, guarded
from patwarden.identity.cache_store import EncryptedFileStore
from tests.identity.test_cache_store import envelope

BINDING = identity_binding(identity="rotator", tenant="tid", client_id="cid", account=None)


def file_store(path: Path) -> EncryptedFileStore:
    key = decode_cache_key(generate_cache_key(), source="test")
    return EncryptedFileStore(
        path=path, cipher=CacheCipher(key=key, source="test", binding=BINDING)
    )


def guard_at(tmp_path: Path) -> RollbackGuard:
    store = file_store(tmp_path / "cache" / "rotator.cache")
    return guarded(store, state_dir=tmp_path / "state", identity="rotator")


def test_an_older_copy_of_the_same_identitys_cache_put_back_is_refused(tmp_path: Path) -> None:
    guard = guard_at(tmp_path)
    inner = guard.inner
    assert isinstance(inner, EncryptedFileStore)
    with guard.locked():
        guard.save(envelope('{"rt": "first"}'))
    old_copy = inner.path.read_bytes()  # the attacker's backup: a valid, bound, sealed cache
    with guard.locked():
        assert guard.load() is not None
        guard.save(envelope('{"rt": "second"}'))
    inner.path.write_bytes(old_copy)  # the rollback
    assert inner.load() is not None  # it still decrypts: the binding alone cannot tell
    reopened = RollbackGuard(inner, record=guard.record)  # the next run
    with pytest.raises(CacheRolledBack) as refused:
        reopened.load()
    message = str(refused.value)
    assert "generation 1" in message
    assert "generation 2 was already saved" in message
    assert "first" not in message
    assert "patwarden login" in (refused.value.hint or "")


def test_each_save_raises_the_sealed_generation_and_the_record(tmp_path: Path) -> None:
    guard = guard_at(tmp_path)
    for expected in (1, 2, 3):
        with guard.locked():
            guard.save(envelope())
        stored = guard.inner.load()
        assert stored is not None
        assert stored.generation == expected
        assert guard.seen() == expected
    assert stat.S_IMODE(guard.record.stat().st_mode) == 0o600
    assert stat.S_IMODE(guard.record.parent.stat().st_mode) == 0o700
    # The generation is inside the AES-GCM plaintext: not readable, not editable without the key.
    assert b"generation" not in guard.inner.path.read_bytes()  # type: ignore[attr-defined]


def test_a_cache_from_before_generations_opens_and_gets_one_on_the_next_save(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    guard = guard_at(tmp_path)
    with guard.inner.locked():
        guard.inner.save(envelope())  # written by an older patwarden: generation 0, no record
    with caplog.at_level("INFO", logger="patwarden.identity.cache_generation"):
        loaded = guard.load()
    assert loaded is not None
    assert loaded.generation == 0
    assert "no generation yet" in caplog.text
    guard.save(loaded)
    assert guard.seen() == 1
    stored = guard.inner.load()
    assert stored is not None
    assert stored.generation == 1


def test_a_pre_generation_copy_put_back_after_an_upgrade_is_refused(tmp_path: Path) -> None:
    guard = guard_at(tmp_path)
    guard.inner.save(envelope())
    old_copy = guard.inner.path.read_bytes()  # type: ignore[attr-defined]
    loaded = guard.load()
    assert loaded is not None
    guard.save(loaded)
    guard.inner.path.write_bytes(old_copy)  # type: ignore[attr-defined]
    with pytest.raises(CacheRolledBack):
        guard.load()


def test_a_new_login_after_logout_continues_above_the_record(tmp_path: Path) -> None:
    guard = guard_at(tmp_path)
    for _ in range(3):
        guard.save(envelope())
    assert guard.delete()
    fresh = RollbackGuard(guard.inner, record=guard.record)
    fresh.save(dataclasses.replace(envelope(), generation=0))  # what a new login writes
    loaded = fresh.load()
    assert loaded is not None
    assert loaded.generation == 4


def test_the_guard_exposes_the_cipher_login_export_seals_with(tmp_path: Path) -> None:
    guard = guard_at(tmp_path)
    assert guard.cipher is guard.inner.cipher  # type: ignore[attr-defined]
    assert repr(guard).startswith("RollbackGuard(EncryptedFileStore(path=")
