"""A plugin's sink entries are checked like built-ins: its own model, key paths and fixes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from patwarden.config.model import load_config
from patwarden.config.problems import InvalidConfig
from tests.support.plugins import MEMORY_PLUGIN, install_plugin

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "11111111-2222-3333-4444-555555555555"


@pytest.fixture
def memory_plugin(plugin_root: Path) -> None:
    install_plugin(
        plugin_root,
        dist="demo-memory-sink",
        module="demo_memory_config",
        source=MEMORY_PLUGIN,
        entries={"memory": "demo_memory_config:MemorySink"},
    )


def _config(tmp_path: Path, *sinks: dict[str, Any], writer: bool = True) -> Path:
    identities: dict[str, Any] = {"rotator": {"kind": "user", "client_id": CLIENT}}
    if writer:
        identities["writer"] = {"kind": "managed_identity"}
    data = {
        "organization": "contoso",
        "azure": {"tenant_id": TENANT},
        "identities": identities,
        "tokens": {"t": {"scopes": ["vso.code"], "lifetime": "30d", "sinks": list(sinks)}},
    }
    path = tmp_path / "patwarden.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    path.chmod(0o600)
    return path


def _problems(path: Path) -> dict[str, str]:
    with pytest.raises(InvalidConfig) as caught:
        load_config(path)
    return {problem.path: str(problem) for problem in caught.value.problems}


@pytest.mark.usefixtures("memory_plugin")
def test_a_valid_plugin_entry_loads(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, {"kind": "memory", "name": "m1", "slots": 2}))
    assert config.tokens["t"].sinks == ({"kind": "memory", "name": "m1", "slots": 2},)


@pytest.mark.usefixtures("memory_plugin")
def test_plugin_entry_problems_have_key_paths_and_fixes(tmp_path: Path) -> None:
    found = _problems(_config(tmp_path, {"kind": "memory", "nmae": "m1", "slots": 9}, writer=False))
    assert found == {
        "tokens.t.sinks[0].nmae": "tokens.t.sinks[0].nmae: unknown key — did you mean 'name'?",
        "tokens.t.sinks[0].name": "tokens.t.sinks[0].name: required key is missing "
        "— see docs/sinks.md",
        "tokens.t.sinks[0].slots": "tokens.t.sinks[0].slots: Input should be less than or "
        "equal to 8 — see docs/sinks.md",
        "tokens.t.sinks[0].identity": "tokens.t.sinks[0].identity: no identity named 'writer' "
        "(the default for this sink) — configured identities: rotator",
    }


@pytest.mark.usefixtures("memory_plugin")
def test_two_plugin_entries_with_one_target_are_refused(tmp_path: Path) -> None:
    found = _problems(
        _config(tmp_path, {"kind": "memory", "name": "m1"}, {"kind": "memory", "name": "m1"})
    )
    assert found == {
        "tokens.t.sinks[1]": "tokens.t.sinks[1]: writes to the same place as tokens.t.sinks[0] "
        "— give each token (and each sink) its own secret, variable or file"
    }


def test_an_unknown_kind_names_the_installed_ones(tmp_path: Path) -> None:
    found = _problems(_config(tmp_path, {"kind": "memroy", "name": "m1"}))
    assert "tokens.t.sinks[0].kind" in found
    assert "unknown sink kind 'memroy'" in found["tokens.t.sinks[0].kind"]
