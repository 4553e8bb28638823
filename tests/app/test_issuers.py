"""The Azure DevOps issuer (full access only where allowed) and the offline issuer."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from patwarden.app.issuers import OfflineIssuer
from patwarden.app.runtime import Runtime
from patwarden.config.model import load_config
from patwarden.domain.marker import format_marker
from patwarden.errors import ConfigError, PatwardenError
from patwarden.secret import Secret
from tests.cli.support import cli
from tests.conftest import RunningEmulator
from tests.support.configs import token_entry, write_config
from tests.support.device_codes import login_in_process
from tests.support.pats import check_pat
from tests.support.sinks import key_vault_value

OP = "b" * 32


def test_the_offline_issuer_refuses_everything() -> None:
    issuer = OfflineIssuer()
    calls: list[Callable[[], object]] = [
        lambda: issuer.list_marked(organization="contoso"),
        lambda: issuer.get(organization="contoso", authorization_id="x"),
        lambda: issuer.revoke(organization="contoso", authorization_id="x"),
        lambda: issuer.verify(organization="contoso", secret=Secret("v"), scopes=["vso.code"]),
        lambda: issuer.create(
            organization="contoso",
            display_name="d",
            scopes=["vso.code"],
            valid_to=datetime.now(UTC),
        ),
    ]
    for call in calls:
        with pytest.raises(PatwardenError, match="works offline"):
            call()


@pytest.mark.slow
def test_full_access_only_for_tokens_that_allow_it(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    tokens = {
        "wide": token_entry(
            emulator, tmp_path, "wide", group=False, scopes=["app_token"], allow_full_access=True
        ),
        "narrow": token_entry(emulator, tmp_path, "narrow", group=False),
    }
    config = write_config(emulator, tmp_path, tokens=tokens)
    login_in_process(emulator, config)
    result = cli("rotate", "--token", "wide", "-o", "json", config=config)
    assert result.code == 0, result.output
    assert json.loads(result.stdout)["tokens"][0]["outcome"] == "rotated"
    check_pat(emulator, key_vault_value(emulator, "wide-pat"), works=True, what="full access")
    with Runtime(config=load_config(config)) as runtime:
        issuer = runtime.issuer("rotator")
        valid_to = datetime.now(UTC) + timedelta(days=1)
        for name in ("narrow", "other"):  # configured without allow_full_access, or unknown
            with pytest.raises(ConfigError, match="app_token"):
                issuer.create(
                    organization="contoso",
                    display_name=format_marker(token_name=name, operation_id=OP),
                    scopes=["app_token"],
                    valid_to=valid_to,
                )
