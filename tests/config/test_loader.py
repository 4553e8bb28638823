"""Reading the config file: what is not a small UTF-8 YAML file is a ConfigError (exit 2).

Regression tests for defects the reliability suites found (docs/reliability.md): a FIFO hung
`config check`, /dev/zero exhausted memory, non-UTF-8 bytes, deep nesting and a list where a
name belongs ended in an unexpected exception (exit 70), problems without an example had no fix,
and a key with control characters was printed raw.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from patwarden.config import loader
from patwarden.config.location import MAX_CONFIG_BYTES
from patwarden.config.model import load_config
from patwarden.config.problems import InvalidConfig
from patwarden.errors import ConfigError

VALID = """\
organization: contoso
azure: {tenant_id: 72f988bf-86f1-41af-91ab-2d7cd011db47}
identities:
  rotator: {kind: user, client_id: 11111111-2222-3333-4444-555555555555}
"""


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "patwarden.yaml"
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "patwarden.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(fifo)


def test_an_endless_device_is_refused() -> None:
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config("/dev/zero")


def test_a_huge_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.encode() + b"#" * MAX_CONFIG_BYTES)
    with pytest.raises(ConfigError, match="larger than 4 MiB"):
        load_config(path)


def test_bytes_that_are_not_utf8_are_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, b"organization: \xff\xfe\n")
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(invalid byte at offset 14\)"):
        load_config(path)


def test_nesting_too_deep_for_the_parser_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, b"tokens: " + b"[" * 20_000 + b"]" * 20_000 + b"\n")
    with pytest.raises(ConfigError, match="nests lists or mappings too deeply"):
        load_config(path)


def test_a_problem_without_an_example_still_says_how_to_fix_it(tmp_path: Path) -> None:
    path = write(tmp_path, (VALID + "state_dir: [1, 2]\n").encode())
    with pytest.raises(InvalidConfig) as caught:
        load_config(path)
    problems = [str(problem) for problem in caught.value.problems]
    assert problems == [
        "state_dir: input should be a path — write a file or directory path here, as text"
    ]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "  writer: {kind: []}\n",
            "identities.writer.kind: unknown kind [] — allowed: user, service_principal, "
            "managed_identity, workload_identity, azure_cli, legacy_password",
        ),
        ("rotator: []\n", "rotator: input should be a valid string"),
        ("auditor: {a: b}\n", "auditor: input should be a valid string"),
    ],
    ids=["identity-kind-list", "rotator-list", "auditor-mapping"],
)
def test_unhashable_values_where_a_name_belongs_are_problems(
    tmp_path: Path, extra: str, expected: str
) -> None:
    path = write(tmp_path, (VALID + extra).encode())
    with pytest.raises(InvalidConfig) as caught:
        load_config(path)
    assert any(str(problem).startswith(expected) for problem in caught.value.problems), [
        str(problem) for problem in caught.value.problems
    ]


def test_a_key_with_control_characters_is_quoted_in_the_report(tmp_path: Path) -> None:
    path = write(tmp_path, (VALID + '"\\r\\x1b[2J": 1\n').encode())
    with pytest.raises(InvalidConfig) as caught:
        load_config(path)
    assert "\r" not in str(caught.value)
    assert "\x1b" not in str(caught.value)
    assert "'\\r\\x1b[2J': unknown key — allowed: " in str(caught.value)


def test_both_organization_keys_say_which_to_keep(tmp_path: Path) -> None:
    path = write(tmp_path, (VALID + "organizations: [a, b]\n").encode())
    with pytest.raises(InvalidConfig, match=r"not both — keep organizations: \[a, b\]"):
        load_config(path)


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("{scopes: [vso.code], lifetime: 99999999999999999999d}", "tokens.t.lifetime: "),
        ("{scopes: [vso.code], lifetime: 1d, rotator: []}", "tokens.t.rotator: "),
        (
            "{scopes: [vso.code], lifetime: 1d, sinks: [{kind: file, path: /x, identity: [a]}]}",
            "tokens.t.sinks[0].identity: ",
        ),
    ],
    ids=["lifetime-overflow", "rotator-list", "sink-identity-list"],
)
def test_hostile_token_values_are_problems(tmp_path: Path, token: str, expected: str) -> None:
    path = write(tmp_path, (VALID + f"tokens:\n  t: {token}\n").encode())
    with pytest.raises(InvalidConfig) as caught:
        load_config(path)
    assert any(str(problem).startswith(expected) for problem in caught.value.problems), [
        str(problem) for problem in caught.value.problems
    ]


@pytest.fixture
def collector_state() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    (gc.enable if enabled else gc.disable)()


@pytest.mark.usefixtures("collector_state")
@pytest.mark.parametrize("enabled", [True, False])
@pytest.mark.parametrize("content", [VALID, VALID + "no_such_key: 1\n", "[unclosed\n"])
def test_no_collection_while_loading_and_the_collector_as_it_was_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, enabled: bool, content: str
) -> None:
    (gc.enable if enabled else gc.disable)()
    during: list[bool] = []
    read_yaml = loader._read_yaml

    def spy(path: Path) -> object:
        during.append(gc.isenabled())
        return read_yaml(path)

    monkeypatch.setattr(loader, "_read_yaml", spy)
    with contextlib.suppress(ConfigError):  # an invalid config (InvalidConfig is one) or YAML
        load_config(write(tmp_path, content.encode()))
    assert during == [False]
    assert gc.isenabled() is enabled
