"""The encrypted file store: 0600, atomic, locked against concurrent runners (real processes)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from patwarden.errors import StateError
from patwarden.identity.account import AccountRecord, CacheEnvelope, CacheFormatError
from patwarden.identity.cache_crypto import (
    CacheCipher,
    CacheDecryptError,
    decode_cache_key,
    generate_cache_key,
)
from patwarden.identity.cache_store import EncryptedFileStore, write_private_file
from patwarden.secret import Secret

REFRESH_TOKEN = "0.AXkA-known-refresh-token-value-that-must-never-be-on-disk"
T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def store_at(path: Path, key: Secret) -> EncryptedFileStore:
    return EncryptedFileStore(
        path=path, cipher=CacheCipher(key=decode_cache_key(key, source="test"), source="test")
    )


def envelope(msal: str = "{}") -> CacheEnvelope:
    record = AccountRecord(
        home_account_id="oid.tid",
        username="svc@contoso.com",
        tenant_id="tid",
        client_id="cid",
        authority="https://login.example/tid",
        logged_in_at=T0,
        last_renewed_at=T0,
    )
    return CacheEnvelope(account=record, msal_cache=msal)


def test_round_trip_file_is_0600_and_holds_no_plaintext_token(tmp_path: Path) -> None:
    path = tmp_path / "state" / "rotator.cache"
    store = store_at(path, generate_cache_key())
    assert store.load() is None
    msal = json.dumps({"RefreshToken": {"k": {"secret": REFRESH_TOKEN}}})
    with store.locked():
        store.save(envelope(msal))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    raw = path.read_bytes()
    assert REFRESH_TOKEN.encode() not in raw
    assert b"svc@contoso.com" not in raw  # the account record is inside the encryption too
    loaded = store.load()
    assert loaded == envelope(msal)
    assert REFRESH_TOKEN not in repr(loaded)
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_wrong_key_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "rotator.cache"
    store_at(path, generate_cache_key()).save(envelope())
    with pytest.raises(CacheDecryptError, match="cannot decrypt the token cache"):
        store_at(path, generate_cache_key()).load()


def test_garbage_file_is_reported_not_crashed_on(tmp_path: Path) -> None:
    key = generate_cache_key()
    path = tmp_path / "rotator.cache"
    box = CacheCipher(key=decode_cache_key(key, source="t"), source="t")
    path.write_bytes(box.seal(b"not json at all"))
    with pytest.raises(CacheFormatError, match="damaged"):
        store_at(path, key).load()


def test_delete(tmp_path: Path) -> None:
    path = tmp_path / "rotator.cache"
    store = store_at(path, generate_cache_key())
    assert store.delete() is False
    store.save(envelope())
    assert store.delete() is True
    assert not path.exists()


def test_loose_permissions_are_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "rotator.cache"
    store = store_at(path, generate_cache_key())
    store.save(envelope())
    path.chmod(0o644)
    store.load()
    assert any("should be 0600" in record.getMessage() for record in caplog.records)


def test_write_private_file_replaces_atomically_with_0600(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("old")
    path.chmod(0o644)
    write_private_file(path, b"new")
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_lock_timeout_is_a_state_error(tmp_path: Path) -> None:
    key = generate_cache_key()
    path = tmp_path / "rotator.cache"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(path)],
        stdout=subprocess.PIPE,
        env={**os.environ, "CACHE_KEY": key.reveal()},
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"locked"
        store = EncryptedFileStore(
            path=path,
            cipher=CacheCipher(key=decode_cache_key(key, source="t"), source="t"),
            lock_timeout=0.2,
        )
        with pytest.raises(StateError, match="locked by another patwarden process"), store.locked():
            pass
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


_HOLD_LOCK = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from patwarden.identity.cache_crypto import CacheCipher, decode_cache_key
    from patwarden.identity.cache_store import EncryptedFileStore
    from patwarden.secret import Secret
    key = decode_cache_key(Secret(os.environ["CACHE_KEY"]), source="env")
    store = EncryptedFileStore(path=Path(sys.argv[1]), cipher=CacheCipher(key=key, source="env"))
    with store.locked():
        print("locked", flush=True)
        time.sleep(30)
    """
)

# Each worker "refreshes" N times: inside the lock it re-reads the cache, waits a little (as a
# network refresh would), then writes a new refresh token and appends it to the history.
_WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    from dataclasses import replace
    from datetime import UTC, datetime
    from pathlib import Path
    from patwarden.identity.account import CacheEnvelope
    from patwarden.identity.cache_crypto import CacheCipher, decode_cache_key
    from patwarden.identity.cache_store import EncryptedFileStore
    from patwarden.secret import Secret
    key = decode_cache_key(Secret(os.environ["CACHE_KEY"]), source="env")
    store = EncryptedFileStore(path=Path(sys.argv[1]), cipher=CacheCipher(key=key, source="env"))
    worker, rounds = sys.argv[2], int(sys.argv[3])
    for i in range(rounds):
        with store.locked():
            current = store.load()
            state = json.loads(current.msal_cache)
            time.sleep(0.01)
            token = f"rt-{worker}-{i}"
            state["refresh_token"] = token
            state["history"].append(token)
            account = replace(current.account, last_renewed_at=datetime.now(UTC))
            store.save(CacheEnvelope(account=account, msal_cache=json.dumps(state)))
    print("done", flush=True)
    """
)


def test_two_processes_refreshing_at_once_lose_nothing_and_end_with_the_newest_token(
    tmp_path: Path,
) -> None:
    key = generate_cache_key()
    path = tmp_path / "rotator.cache"
    store_at(path, key).save(envelope(json.dumps({"refresh_token": "rt-login", "history": []})))
    rounds = 15
    env = {**os.environ, "CACHE_KEY": key.reveal()}  # via the environment, never argv
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(path), name, str(rounds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for name in ("a", "b")
    ]
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err.decode()
        assert out.strip() == b"done"
    final = store_at(path, key).load()
    assert final is not None
    state = json.loads(final.msal_cache)
    history = state["history"]
    # Every refresh of both processes is there: nothing was overwritten by a stale read.
    assert sorted(history) == sorted(f"rt-{w}-{i}" for w in "ab" for i in range(rounds))
    # Each process saw its own writes in order, and the cache ends with the newest token.
    for w in "ab":
        assert [t for t in history if t.startswith(f"rt-{w}-")] == [
            f"rt-{w}-{i}" for i in range(rounds)
        ]
    assert state["refresh_token"] == history[-1]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
