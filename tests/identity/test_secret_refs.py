"""Resolving {env} and {file} references (Key Vault references: see test_identity_emulator)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from patwarden.config.model import AzureConfig, EnvRef, FileRef, KeyVaultLocation, KeyVaultRef
from patwarden.errors import ConfigError
from patwarden.identity.secret_refs import SecretUnavailable, describe_ref, resolve_secret

AZURE = AzureConfig()


def test_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_SECRET", "value-1")
    secret = resolve_secret(EnvRef(env="MY_SECRET"), credentials=None, azure=AZURE)
    assert secret.reveal() == "value-1"
    assert "value-1" not in repr(secret)


def test_env_unset_or_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMPTY", "")
    for name in ("EMPTY", "NEVER_SET_ANYWHERE"):
        with pytest.raises(SecretUnavailable) as caught:
            resolve_secret(EnvRef(env=name), credentials=None, azure=AZURE)
        assert f"environment variable {name} is not set" in str(caught.value)
        assert caught.value.exit_code == 2


def test_file_drops_one_trailing_newline(tmp_path: Path) -> None:
    path = tmp_path / "s"
    path.write_text("line1\nvalue  \n")
    path.chmod(0o600)
    assert (
        resolve_secret(FileRef(file=path), credentials=None, azure=AZURE).reveal()
        == "line1\nvalue  "
    )


def test_file_missing_empty_and_loose(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(SecretUnavailable, match="does not exist"):
        resolve_secret(FileRef(file=tmp_path / "nope"), credentials=None, azure=AZURE)
    empty = tmp_path / "empty"
    empty.write_text("\n")
    empty.chmod(0o600)
    with pytest.raises(SecretUnavailable, match="is empty"):
        resolve_secret(FileRef(file=empty), credentials=None, azure=AZURE)
    loose = tmp_path / "loose"
    loose.write_text("v")
    loose.chmod(0o604)
    with caplog.at_level(logging.WARNING):
        assert resolve_secret(FileRef(file=loose), credentials=None, azure=AZURE).reveal() == "v"
    assert any("chmod 600" in r.getMessage() for r in caplog.records)


def test_key_vault_reference_needs_identities() -> None:
    ref = KeyVaultRef(
        key_vault=KeyVaultLocation(
            vault_url="https://kv.vault.azure.net", secret="s", identity="writer"
        )
    )
    assert describe_ref(ref) == "Key Vault secret 's' in https://kv.vault.azure.net"
    with pytest.raises(ConfigError, match="needs identity 'writer'"):
        resolve_secret(ref, credentials=None, azure=AZURE)
