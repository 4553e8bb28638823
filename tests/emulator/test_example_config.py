"""The ready-to-use patwarden.yaml the emulator writes into its state directory."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import yaml

from patwarden.azdo.constants import DEFAULT_SCOPE
from patwarden.config.model import (
    FileCacheConfig,
    FileRef,
    ServicePrincipalIdentity,
    UserIdentity,
    load_config,
)
from patwarden.identity.credential_set import CredentialSet
from patwarden_emulator.context import Emulator
from patwarden_emulator.example_config import write_example_config
from tests.conftest import RunningEmulator, start_emulator, stop_emulator
from tests.support.pats import check_pat
from tests.support.sinks import key_vault_value


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_ready_file_names_a_valid_config_pointing_at_this_emulator(
    emulator: RunningEmulator,
) -> None:
    path = Path(emulator["example_config"])
    assert path == emulator.state_dir / "patwarden.yaml"
    config = load_config(path)
    azure = config.azure
    assert (azure.authority_host, azure.azure_devops_url, azure.vssps_url) == (
        emulator["authority_host"],
        emulator["azure_devops_url"],
        emulator["vssps_url"],
    )
    assert str(azure.ca_bundle) == emulator.ca_bundle
    assert azure.tenant_id == emulator["tenant_id"]
    assert config.orgs == (emulator["organization"],)
    assert config.rotator == "rotator"
    example = config.tokens["example-pat"]
    assert [sink["kind"] for sink in example.sinks] == ["key_vault", "file"]
    assert example.sinks[0]["vault_url"] == emulator["key_vault_url"]
    assert config.state_dir == emulator.state_dir / "patwarden"

    rotator = config.identity("rotator")
    assert isinstance(rotator, UserIdentity)
    assert rotator.client_id == emulator["identities"]["public_client"]["client_id"]
    assert rotator.username == emulator["identities"]["rotator"]["username"]
    assert isinstance(rotator.cache, FileCacheConfig)
    assert isinstance(rotator.cache.key, FileRef)
    key_file = rotator.cache.key.file

    writer = config.identity("writer")
    assert isinstance(writer, ServicePrincipalIdentity)
    sp = emulator["identities"]["service_principal"]
    assert writer.client_id == sp["client_id"]
    assert isinstance(writer.client_secret, FileRef)
    secret_file = writer.client_secret.file
    assert secret_file.read_text().strip() == sp["client_secret"]

    for private in (path, key_file, secret_file):
        assert mode(private) == 0o600, private
    assert sp["client_secret"] not in path.read_text()


def test_its_writer_gets_a_token_from_the_emulator(emulator: RunningEmulator) -> None:
    credentials = CredentialSet(load_config(emulator["example_config"]))
    try:
        token = credentials.get("writer").get_token(DEFAULT_SCOPE)
    finally:
        credentials.close()
    assert token.expires_on > 0


def test_a_restart_rewrites_the_urls_and_keeps_the_cache_key(tmp_path: Path) -> None:
    first = Emulator.open(state_dir=tmp_path, base_url="https://127.0.0.1:4431")
    try:
        path = write_example_config(first)
        key = (tmp_path / "rotator-cache.key").read_text()
        assert (
            yaml.safe_load(path.read_text())["azure"]["authority_host"] == "https://127.0.0.1:4431"
        )
    finally:
        first.store.close()
    second = Emulator.open(state_dir=tmp_path, base_url="https://127.0.0.1:4432")
    try:
        assert write_example_config(second) == path
    finally:
        second.store.close()
    document = yaml.safe_load(path.read_text())
    assert document["azure"]["vssps_url"] == "https://127.0.0.1:4432/vssps"
    assert (tmp_path / "rotator-cache.key").read_text() == key
    assert path.read_text().startswith("# patwarden configuration for the local emulator at ")


def test_login_then_rotate_works_with_the_example_as_written(tmp_path: Path) -> None:
    """What the file's header tells a user to try, with nothing edited."""
    running = start_emulator(tmp_path, "--auto-approve-device-codes")
    try:
        env = {**os.environ, "PATWARDEN_CONFIG": running["example_config"]}
        for command in (["login"], ["rotate"]):
            result = subprocess.run(
                [sys.executable, "-m", "patwarden", *command],
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert result.returncode == 0, (command, result.stdout, result.stderr)
        sink = tmp_path / "patwarden" / "sinks" / "example-pat.txt"
        assert mode(sink) == 0o600
        check_pat(running, sink.read_text().strip(), works=True, what="the example's file sink")
        vault = key_vault_value(running, "example-pat")
        check_pat(running, vault, works=True, what="the example's Key Vault secret")
    finally:
        stop_emulator(running)
