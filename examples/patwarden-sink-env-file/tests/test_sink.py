"""The env_file sink: the shipped contract test, its own behaviour, a config using it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from patwarden.config.model import load_config
from patwarden.plugins import SinkContext
from patwarden.plugins.testing import SinkContract, fake_meta, fake_pat

from patwarden_sink_env_file import EnvFileSink, EnvFileSinkSpec

CONTEXT = SinkContext(credential=lambda name: None)  # type: ignore[arg-type, return-value]


class TestEnvFileSinkContract(SinkContract):
    kind = "env_file"  # also checks the entry point and the spec model

    @pytest.fixture
    def sink(self, tmp_path: Path) -> EnvFileSink:
        return EnvFileSink.from_spec(EnvFileSinkSpec(path=tmp_path / "pat.env"), CONTEXT)


def test_other_lines_are_kept_and_the_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "app.env"
    path.write_text("# settings\nLOG_LEVEL=debug\nAZURE_DEVOPS_EXT_PAT=old\n")
    sink = EnvFileSink.from_spec({"kind": "env_file", "path": str(path)}, CONTEXT)
    pat = fake_pat()
    sink.write(pat, fake_meta())
    lines = path.read_text().splitlines()
    assert lines[:2] == ["# settings", "LOG_LEVEL=debug"]
    assert lines[-1] == f"AZURE_DEVOPS_EXT_PAT={pat.reveal()}"
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert pat.reveal() not in (sink.previous_path.read_text() + repr(sink) + sink.describe())


def _config(tmp_path: Path, sink: dict[str, object]) -> Path:
    data = {
        "organization": "contoso",
        "azure": {"tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47"},
        "identities": {
            "rotator": {"kind": "user", "client_id": "1" * 8 + "-2222-3333-4444-" + "5" * 12}
        },
        "tokens": {"flux-git": {"scopes": ["vso.code"], "lifetime": "30d", "sinks": [sink]}},
    }
    path = tmp_path / "patwarden.yaml"
    path.write_text(yaml.safe_dump(data))
    path.chmod(0o600)
    return path


def _check(config: Path) -> subprocess.CompletedProcess[str]:
    """Run ``patwarden config check`` as a user would."""
    command = [sys.executable, "-m", "patwarden", "config", "check", "--config", str(config)]
    return subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603  # our own CLI


def test_a_config_using_the_kind_validates(tmp_path: Path) -> None:
    entry = {"kind": "env_file", "path": str(tmp_path / "pat.env"), "variable": "FLUX_PAT"}
    config = load_config(_config(tmp_path, entry))
    assert config.tokens["flux-git"].sinks == (entry,)
    result = _check(_config(tmp_path, entry))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_kind_reports_its_problems_with_key_paths(tmp_path: Path) -> None:
    entry = {"kind": "env_file", "path": "relative.env", "varaible": "X"}
    result = _check(_config(tmp_path, entry))
    assert result.returncode == 2
    output = result.stdout + result.stderr
    assert "tokens.flux-git.sinks[0].path: must be an absolute path" in output
    assert "tokens.flux-git.sinks[0].varaible: unknown key — did you mean 'variable'?" in output
