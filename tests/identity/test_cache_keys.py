"""Where the cache key comes from: explicit reference, OS keyring, or a clear refusal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backend
import pytest
from keyring.backends import fail

from patwarden.config.model import AzureConfig, EnvRef, FileRef, KeyringRef
from patwarden.errors import PatwardenError
from patwarden.identity.cache_crypto import CacheKeyInvalid, generate_cache_key
from patwarden.identity.cache_keys import (
    KEYRING_SERVICE,
    CacheKeyUnavailable,
    cache_cipher,
    keyring_problem,
)
from patwarden.identity.secret_refs import SecretUnavailable

AZURE = AzureConfig()


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A real keyring backend that keeps passwords in memory (stands in for the OS keyring)."""

    priority = 5  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.items.pop((service, username), None)


@pytest.fixture
def no_keyring() -> Iterator[None]:
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(previous)


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def build(key: object, *, create: bool = False, required: bool = True):  # type: ignore[no-untyped-def]
    return cache_cipher(
        identity="rotator", key=key, credentials=None, azure=AZURE, create=create, required=required
    )  # type: ignore[arg-type]


def test_env_key(monkeypatch: pytest.MonkeyPatch, no_keyring: None) -> None:
    monkeypatch.setenv("PATWARDEN_CACHE_KEY", generate_cache_key().reveal())
    box = build(EnvRef(env="PATWARDEN_CACHE_KEY"))
    assert box is not None
    assert box.source == "environment variable PATWARDEN_CACHE_KEY"
    assert box.open(box.seal(b"x"), where="t") == b"x"


def test_file_key(tmp_path: Path, no_keyring: None) -> None:
    key_file = tmp_path / "cache.key"
    key_file.write_text(generate_cache_key().reveal() + "\n")
    key_file.chmod(0o600)
    box = build(FileRef(file=key_file))
    assert box is not None
    assert box.source == f"file {key_file}"


@pytest.mark.parametrize("where", ["file", "directory"])
def test_a_key_file_others_could_replace_is_refused(
    tmp_path: Path, no_keyring: None, where: str
) -> None:
    # Issue 11, item 1: whoever swaps the key reads the next token cache sealed with it.
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    key_file = keys / "cache.key"
    key_file.write_text(generate_cache_key().reveal() + "\n")
    key_file.chmod(0o600)
    (key_file if where == "file" else keys).chmod(0o666 if where == "file" else 0o777)
    with pytest.raises(PatwardenError, match=r"another user owns it or may write it|writable by"):
        build(FileRef(file=key_file))


def test_unset_env_key(no_keyring: None) -> None:
    with pytest.raises(SecretUnavailable, match="PATWARDEN_CACHE_KEY is not set"):
        build(EnvRef(env="PATWARDEN_CACHE_KEY"))


def test_malformed_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K", "hunter2")
    with pytest.raises(CacheKeyInvalid) as caught:
        build(EnvRef(env="K"))
    assert "hunter2" not in str(caught.value)


def test_headless_box_without_key_refuses_instead_of_writing_plaintext(no_keyring: None) -> None:
    assert keyring_problem() is not None
    with pytest.raises(CacheKeyUnavailable) as caught:
        build(None, create=True)
    message = str(caught.value)
    assert "no key to encrypt the token cache of identity 'rotator'" in message
    assert "patwarden config cache-key" in message
    assert caught.value.exit_code == 2


def test_explicit_keyring_request_without_a_keyring(no_keyring: None) -> None:
    with pytest.raises(CacheKeyUnavailable, match=r"key: \{keyring: true\} is set"):
        build(KeyringRef(keyring=True), create=True)


def test_key_vault_cache_without_key_is_unencrypted_by_choice(no_keyring: None) -> None:
    assert build(None, required=False) is None


def test_keyring_key_is_created_at_login_and_reused(memory_keyring: MemoryKeyring) -> None:
    assert keyring_problem() is None
    with pytest.raises(CacheKeyUnavailable, match="run `patwarden login --identity rotator`"):
        build(None, create=False)
    first = build(None, create=True)
    assert first is not None
    stored = memory_keyring.items[(KEYRING_SERVICE, "cache-key:rotator")]
    assert stored not in repr(first)
    second = build(KeyringRef(keyring=True), create=False)
    assert second is not None
    assert second.open(first.seal(b"same key"), where="t") == b"same key"
