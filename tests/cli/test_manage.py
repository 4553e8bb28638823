"""`patwarden adopt` and `patwarden revoke` through the real CLI against the emulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.support import cli
from tests.conftest import RunningEmulator
from tests.support.configs import token_entry, write_config
from tests.support.device_codes import login_in_process
from tests.support.issued import assert_no_secret_in
from tests.support.pats import check_pat
from tests.support.sinks import key_vault_value

pytestmark = pytest.mark.slow


@pytest.fixture
def rotated(emulator: RunningEmulator, tmp_path: Path) -> Path:
    tokens = {"flux": token_entry(emulator, tmp_path, "flux", group=False)}
    config = write_config(emulator, tmp_path, tokens=tokens)
    login_in_process(emulator, config)
    assert cli("rotate", config=config).code == 0
    return config


def test_adopt_after_the_state_file_was_lost(
    emulator: RunningEmulator, tmp_path: Path, rotated: Path
) -> None:
    current = json.loads(cli("status", "-o", "json", config=rotated).stdout)["tokens"][0]
    for path in (tmp_path / "state").glob("state.db*"):
        if path.is_file():
            path.unlink()
    refused = cli("rotate", "-o", "json", config=rotated)
    assert refused.code == 8
    assert "run `patwarden adopt` first" in refused.stdout
    adopted = cli("adopt", "-o", "json", config=rotated)
    assert adopted.code == 0, adopted.output
    (row,) = json.loads(adopted.stdout)["tokens"]
    assert row["adopted"] == "yes"
    assert row["current_authorization_id"] == current["current_authorization_id"]
    again = cli("adopt", "-o", "table", config=rotated)
    assert again.code == 0
    assert "already managed; pass --replace to rebuild it anyway" in again.stdout
    assert json.loads(cli("rotate", "-o", "json", config=rotated).stdout)["status"] == "ok"


def test_revoke_asks_first_and_refuses_without_a_terminal(
    emulator: RunningEmulator, rotated: Path
) -> None:
    result = cli("revoke", "flux", config=rotated)
    assert result.code == 2
    assert "refusing to revoke without confirmation: stdin is not a terminal" in result.stderr
    check_pat(emulator, key_vault_value(emulator, "flux-pat"), works=True, what="untouched PAT")


def test_revoke_the_current_pat_then_rotate(emulator: RunningEmulator, rotated: Path) -> None:
    value = key_vault_value(emulator, "flux-pat")
    result = cli("revoke", "flux", "--yes", "-o", "table", config=rotated)
    assert result.code == 0, result.output
    assert result.stdout.splitlines()[1] == (
        "Run `patwarden rotate --token flux` to give its consumers a new PAT."
    )
    check_pat(emulator, value, works=False, what="the revoked PAT")
    again = cli("revoke", "flux", "--yes", config=rotated)
    assert again.code == 2
    assert "token 'flux' has no current PAT in the state store" in again.stderr
    assert cli("rotate", config=rotated).code == 0
    check_pat(emulator, key_vault_value(emulator, "flux-pat"), works=True, what="the new PAT")
    audit = json.loads(
        cli("audit", "--kind", "revoked_by_user", "-o", "json", config=rotated).stdout
    )
    assert len(audit) == 1
    assert_no_secret_in(emulator, result.output, again.output)


def test_revoke_with_rotate_replaces_the_pat_first(
    emulator: RunningEmulator, rotated: Path
) -> None:
    old = key_vault_value(emulator, "flux-pat")
    result = cli("revoke", "flux", "--rotate", "--yes", "-o", "json", config=rotated)
    assert result.code == 0, result.output
    (token,) = json.loads(result.stdout)["tokens"]
    assert token["outcome"] == "rotated"
    check_pat(emulator, old, works=False, what="the old PAT (no grace period)")
    check_pat(emulator, key_vault_value(emulator, "flux-pat"), works=True, what="the new PAT")
    usage = cli("revoke", "flux", "--rotate", "--previous", config=rotated)
    assert usage.code == 2
