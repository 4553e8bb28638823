"""Which Entra scopes the emulated PAT Lifecycle API wants (policy ``pat_api_scopes``), and that
patwarden, which asks for both ``vso.pats`` and ``vso.pats_manage``, works under every mode.

The 7.2 spec's per-operation security (reads ``vso.pats``, writes ``vso.pats_manage``) is the
default; ``manage_implies_read`` lets ``vso.pats_manage`` read as well; ``both_required`` is what a
third-party probe saw (a create refused with either scope alone).
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.cli.support import cli
from tests.conftest import RunningEmulator
from tests.support.configs import sink_dir, write_config
from tests.support.device_codes import device_code_token, login_in_process

MODES = ("per_operation", "manage_implies_read", "both_required")
# (mode, token scopes) -> (list allowed, create allowed)
EXPECTED = {
    ("per_operation", "vso.pats"): (True, False),
    ("per_operation", "vso.pats_manage"): (False, True),
    ("per_operation", "vso.pats vso.pats_manage"): (True, True),
    ("manage_implies_read", "vso.pats"): (True, False),
    ("manage_implies_read", "vso.pats_manage"): (True, True),
    ("manage_implies_read", "vso.pats vso.pats_manage"): (True, True),
    ("both_required", "vso.pats"): (False, False),
    ("both_required", "vso.pats_manage"): (False, False),
    ("both_required", "vso.pats vso.pats_manage"): (True, True),
}


def _call(emu: RunningEmulator, token: str, *, create: bool) -> httpx.Response:
    url = f"{emu['vssps_url']}/{emu['organization']}/_apis/tokens/pats"
    headers = {"Authorization": f"Bearer {token}", "X-TFS-FedAuthRedirect": "Suppress"}
    params = {"api-version": "7.1-preview.1"}
    with emu.http() as client:
        if not create:
            return client.get(url, params=params, headers=headers)
        body = {"displayName": "scope-probe", "scope": "vso.profile", "allOrgs": False}
        return client.post(url, params=params, headers=headers, json=body)


@pytest.mark.parametrize(("mode", "scopes"), list(EXPECTED))
def test_each_mode_allows_what_it_documents(emu: RunningEmulator, mode: str, scopes: str) -> None:
    emu.admin("PUT", "/policies", json={"pat_api_scopes": mode})
    token = device_code_token(emu, scopes=scopes)
    may_list, may_create = EXPECTED[(mode, scopes)]
    listed = _call(emu, token, create=False)
    created = _call(emu, token, create=True)
    assert (listed.status_code == 200) is may_list, listed.text
    assert (created.status_code == 200) is may_create, created.text
    for refused in (r for r in (listed, created) if r.status_code != 200):
        assert refused.status_code == 401
        assert "The access token lacks the scope 'vso.pats" in refused.json()["message"]


def test_an_unknown_mode_is_refused_by_the_admin_api(emu: RunningEmulator) -> None:
    with pytest.raises(httpx.HTTPStatusError) as refused:
        emu.admin("PUT", "/policies", json={"pat_api_scopes": "anything"})
    assert "pat_api_scopes must be one of" in refused.value.response.text


@pytest.mark.slow
def test_patwarden_rotates_under_every_mode(emu: RunningEmulator, tmp_path: Path) -> None:
    token = {
        "scopes": ["vso.code"],
        "lifetime": "30d",
        "rotate_before": "7d",
        "sinks": [{"kind": "file", "path": str(sink_dir(tmp_path) / "app.pat")}],
    }
    config = write_config(emu, tmp_path, tokens={"app": token})
    login_in_process(emu, config)
    for mode in MODES:
        emu.admin("PUT", "/policies", json={"pat_api_scopes": mode})
        rotated = cli("rotate", "--force", "-o", "json", config=config)
        assert rotated.code == 0, (mode, rotated.output)
        (outcome,) = json.loads(rotated.stdout)["tokens"]
        assert outcome["outcome"] == "rotated", (mode, outcome)
