"""Hostile configuration files: `patwarden config check` exits 2 with key paths and fixes.

Files that cannot be parsed or read run the real CLI in a subprocess (the real exit code, the
real stderr); hostile values go through the in-process CLI group, and the Hypothesis property
mutates a valid config at random key paths with hostile values (wrong types,
unknown keys, huge values, path and URL injection, YAML-only types) through the in-process CLI
group. Never a traceback, never exit 1 or 70, never a secret echoed back.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patwarden.cli.main import cli
from tests.reliability.figures import record

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "11111111-2222-3333-4444-555555555555"
BASE: dict[str, Any] = {
    "organization": "contoso",
    "azure": {"tenant_id": TENANT},
    "identities": {
        "rotator": {"kind": "user", "client_id": CLIENT},
        "writer": {"kind": "service_principal", "client_id": CLIENT, "client_secret": {"env": "S"}},
    },
    "tokens": {
        "flux-git": {
            "scopes": ["vso.code"],
            "lifetime": "30d",
            "sinks": [{"kind": "file", "path": "/run/patwarden/flux-git"}],
        }
    },
}
TOKEN = "tokens.flux-git"
SINK = {"kind": "variable_group", "project": "infra", "group": "gitops", "variable": "PAT"}
SECRET_LITERAL = "hunter2-do-not-echo-me-0123456789"


def check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "patwarden", "config", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )


def assert_clean_refusal(output: str, code: int, *, key_path: str | None = None) -> None:
    """Exit 2, no traceback, every problem with a key path and a fix."""
    assert code == 2, output
    assert "Traceback" not in output, output
    assert "unexpected" not in output.lower(), output
    assert "Fix:" in output or " — " in output, output
    for line in output.splitlines():
        if line.startswith("  - "):
            assert " — " in line, f"a problem without a fix: {line}"
    if key_path is not None:
        assert key_path in output, output


def with_(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``base`` with ``value`` at dotted ``path`` (created as needed).

    A numeric segment indexes an existing list (``tokens.x.sinks.0.path``).
    """
    doc = yaml.safe_load(yaml.safe_dump(base))
    node: Any = doc
    keys = path.split(".")
    for key in keys[:-1]:
        if isinstance(node, list) and key.isdigit() and int(key) < len(node):
            if not isinstance(node[int(key)], dict):
                node[int(key)] = {}
            node = node[int(key)]
            continue
        if not isinstance(node, dict):
            return doc  # the path goes through a scalar or past a list's end: no change
        if not isinstance(node.get(key), dict | list):
            node[key] = {}
        node = node[key]
    last = keys[-1]
    if isinstance(node, list) and last.isdigit() and int(last) < len(node):
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    return doc


# --- hand-written ------------------------------------------------------------------------------

HOSTILE: list[tuple[str, str, Any, str]] = [
    # (case id, key path, value, key path the message must name)
    ("org-wrong-type", "organization", 5, "organization"),
    ("org-list", "organization", ["a", "b"], "organization"),
    ("org-path-injection", "organization", "../../etc/passwd", "organization"),
    ("org-url-injection", "organization", "contoso/_apis?x=", "organization"),
    ("org-huge", "organization", "c" * 1_000_000, "organization"),
    ("identities-list", "identities", ["rotator"], "identities"),
    ("identity-string", "identities.writer", "managed_identity", "identities.writer"),
    ("identity-path-name", "identities.../../x", {"kind": "managed_identity"}, "identities"),
    ("identity-unknown-kind", "identities.writer.kind", "root", "identities.writer.kind"),
    ("unknown-top-key", "rotater", "rotator", "rotater"),
    ("unknown-nested-key", "identities.rotator.clientid", CLIENT, "identities.rotator.clientid"),
    ("client-id-not-guid", "identities.rotator.client_id", "' OR 1=1 --", "client_id"),
    ("secret-literal", "identities.writer.client_secret", SECRET_LITERAL, "client_secret"),
    ("secret-number", "identities.writer.client_secret", 1234567890123, "client_secret"),
    ("state-dir-list", "state_dir", [1, 2], "state_dir"),
    ("state-dir-mapping", "state_dir", {"a": "b"}, "state_dir"),
    ("ca-bundle-mapping", "azure.ca_bundle", {"a": "b"}, "azure.ca_bundle"),
    ("http-url", "azure.azure_devops_url", "http://dev.azure.com", "azure.azure_devops_url"),
    ("javascript-url", "azure.vssps_url", "javascript:alert(1)", "azure.vssps_url"),
    ("file-url", "azure.authority_host", "file:///etc/passwd", "azure.authority_host"),
    ("url-with-query", "azure.vssps_url", "https://x/?redirect=evil", "azure.vssps_url"),
    ("tenant-injection", "azure.tenant_id", "../common", "azure.tenant_id"),
    ("rotator-unknown", "rotator", "nobody", "rotator"),
    ("rotator-service-principal", "rotator", "writer", "identities.writer.kind"),
    ("tokens-list", "tokens", ["a"], "tokens"),
    ("cache-kind", "identities.rotator.cache", {"kind": "s3"}, "identities.rotator.cache.kind"),
    ("env-ref-injection", "identities.writer.client_secret", {"env": "X; rm -rf /"}, "env"),
    ("duration-nonsense", "identities.rotator.sign_in_frequency", "-5d", "sign_in_frequency"),
    ("token-path-name", "tokens.../../etc/passwd", {"scopes": ["vso.code"], "lifetime": "1d"}, ""),
    ("token-url-name", "tokens.a?x=1&y=/../", {"scopes": ["vso.code"], "lifetime": "1d"}, ""),
    ("token-huge-name", "tokens." + "t" * 300, {"scopes": ["vso.code"], "lifetime": "1d"}, ""),
    ("token-not-mapping", TOKEN, "vso.code", TOKEN),
    ("scopes-string", f"{TOKEN}.scopes", "vso.code", f"{TOKEN}.scopes"),
    ("scope-injection", f"{TOKEN}.scopes", ["vso.code&allOrgs=true"], f"{TOKEN}.scopes"),
    ("full-access", f"{TOKEN}.scopes", ["app_token"], f"{TOKEN}.scopes"),
    ("lifetime-huge", f"{TOKEN}.lifetime", "99999999999999999999d", f"{TOKEN}.lifetime"),
    ("lifetime-number", f"{TOKEN}.lifetime", 30, f"{TOKEN}.lifetime"),
    ("rotate-loop", f"{TOKEN}.rotate_before", "31d", f"{TOKEN}.rotate_before"),
    ("global-pat", f"{TOKEN}.all_orgs", True, f"{TOKEN}.all_orgs"),
    ("sinks-mapping", f"{TOKEN}.sinks", {"kind": "file"}, f"{TOKEN}.sinks"),
    ("sink-relative-path", f"{TOKEN}.sinks", [{"kind": "file", "path": "../pat"}], "sinks[0].path"),
    ("sink-unknown-kind", f"{TOKEN}.sinks", [{"kind": "s3", "bucket": "x"}], "sinks[0].kind"),
    ("sink-project-traversal", f"{TOKEN}.sinks", [{**SINK, "project": "../../_apis"}], "project"),
    (
        "sink-http-vault",
        f"{TOKEN}.sinks",
        [{"kind": "key_vault", "vault_url": "http://kv", "secret": "s"}],
        "vault_url",
    ),
    (
        "sink-vault-secret-path",
        f"{TOKEN}.sinks",
        [{"kind": "key_vault", "vault_url": "https://kv.vault.azure.net", "secret": "../x"}],
        "secret",
    ),
    ("sink-duplicate", f"{TOKEN}.sinks", [SINK, SINK], "sinks[1]"),
    ("hook-shell-string", f"{TOKEN}.on_rotate", {"command": "rm -rf / #"}, "on_rotate.command"),
    ("hook-http-webhook", f"{TOKEN}.on_rotate", {"webhook": "http://hooks.example"}, "webhook"),
    ("rotation-concurrency", "rotation.concurrency", 10**9, "rotation.concurrency"),
]


@pytest.mark.parametrize(
    ("path", "value", "named"), [case[1:] for case in HOSTILE], ids=[case[0] for case in HOSTILE]
)
def test_hostile_values_are_refused_with_key_path_and_fix(
    tmp_path: Path, path: str, value: Any, named: str
) -> None:
    config = tmp_path / "patwarden.yaml"
    config.write_text(yaml.safe_dump(with_(BASE, path, value)))
    config.chmod(0o600)

    result = CliRunner().invoke(cli, ["config", "check", "--config", str(config)])

    assert_clean_refusal(result.output, result.exit_code, key_path=named)
    assert SECRET_LITERAL not in result.output
    assert "c" * 1000 not in result.output, "a huge value is not echoed back"
    record("bad_input", kind="config", case=path, tried=1)


RAW_FILES: list[tuple[str, bytes]] = [
    ("not-a-mapping", b"- just\n- a list\n"),
    ("python-tag", b"organization: !!python/object/apply:os.system ['echo pwned']\n"),
    ("duplicate-keys", b"organization: a\norganization: b\n"),
    ("tabs", b"organization:\n\t- x\n"),
    ("not-utf8", b"organization: \xff\xfe contoso\n"),
    ("binary", bytes(range(256)) * 4),
    ("nul-bytes", b"organization: con\x00toso\n"),
    ("deep-nesting", b"tokens: " + b"[" * 20_000 + b"]" * 20_000 + b"\n"),
    ("deep-mappings", b"state_dir: " + b"{a: " * 5_000 + b"1" + b"}" * 5_000 + b"\n"),
    ("unclosed", b"identities: {rotator: {kind: user\n"),
    ("bom-then-junk", b"\xef\xbb\xbf\x00\x01\x02"),
]


@pytest.mark.parametrize("content", [case[1] for case in RAW_FILES], ids=[c[0] for c in RAW_FILES])
def test_unparsable_files_are_refused(tmp_path: Path, content: bytes) -> None:
    config = tmp_path / "patwarden.yaml"
    config.write_bytes(content)
    config.chmod(0o600)

    result = check(config)

    assert_clean_refusal(result.stderr, result.returncode)
    assert "pwned" not in result.stdout
    record("bad_input", kind="config-file", tried=1)


def test_a_billion_laughs_does_not_blow_up(tmp_path: Path) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    lines += [
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]"
        for i in range(8)
    ]
    config = tmp_path / "patwarden.yaml"
    config.write_text("\n".join(lines) + "\norganization: *i\n")
    config.chmod(0o600)

    result = check(config)

    assert_clean_refusal(result.stderr, result.returncode, key_path="organization")
    assert len(result.stderr) < 10_000
    record("bad_input", kind="config-file", tried=1)


def _special_file(tmp_path: Path, kind: str) -> Path:
    if kind == "directory":
        path = tmp_path / "dir.yaml"
        path.mkdir()
    elif kind == "fifo":
        path = tmp_path / "fifo.yaml"
        os.mkfifo(path)
    elif kind == "broken-symlink":
        path = tmp_path / "link.yaml"
        path.symlink_to(tmp_path / "missing")
    elif kind == "endless":
        path = Path("/dev/zero")
    else:
        path = tmp_path / "missing.yaml"
    return path


@pytest.mark.parametrize("kind", ["directory", "fifo", "broken-symlink", "endless", "missing"])
def test_files_that_cannot_be_read_as_a_config(tmp_path: Path, kind: str) -> None:
    result = check(_special_file(tmp_path, kind))  # a FIFO or /dev/zero must not hang or OOM

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "unexpected" not in result.stderr.lower()
    record("bad_input", kind="config-file", tried=1)


# --- generated ---------------------------------------------------------------------------------

KEY_PATHS = [
    TOKEN,
    f"{TOKEN}.scopes",
    f"{TOKEN}.lifetime",
    f"{TOKEN}.rotate_before",
    f"{TOKEN}.revoke_after",
    f"{TOKEN}.jitter",
    f"{TOKEN}.sinks",
    f"{TOKEN}.sinks.0",
    f"{TOKEN}.sinks.0.kind",
    f"{TOKEN}.sinks.0.path",
    f"{TOKEN}.sinks.0.format",
    f"{TOKEN}.sinks.0.host",
    f"{TOKEN}.sinks.0.identity",
    f"{TOKEN}.sinks.0.project",
    f"{TOKEN}.sinks.0.vault_url",
    f"{TOKEN}.on_rotate",
    f"{TOKEN}.on_rotate.command",
    f"{TOKEN}.on_rotate.webhook",
    f"{TOKEN}.organization",
    f"{TOKEN}.rotator",
    "tokens.../../x",
    "tokens.https://evil.example/",
    "rotation",
    "rotation.concurrency",
    "rotation.orphan_margin",
    "organization",
    "organizations",
    "state_dir",
    "rotator",
    "auditor",
    "tokens",
    "azure",
    "azure.authority_host",
    "azure.azure_devops_url",
    "azure.vssps_url",
    "azure.tenant_id",
    "azure.ca_bundle",
    "identities",
    "identities.rotator",
    "identities.rotator.kind",
    "identities.rotator.client_id",
    "identities.rotator.username",
    "identities.rotator.sign_in_frequency",
    "identities.rotator.cache",
    "identities.rotator.cache.kind",
    "identities.rotator.cache.key",
    "identities.rotator.cache.path",
    "identities.writer.kind",
    "identities.writer.client_secret",
    "identities.writer.certificate",
    "identities.writer.client_secret.env",
    "identities.writer.client_secret.file",
]
SECRET_KEYS = ("client_secret", "password", "key")
HOSTILE_TEXT = st.sampled_from(
    [
        "../../../../etc/passwd",
        "/dev/zero",
        "https://evil.example/../../x?y=z#f",
        "http://169.254.169.254/metadata",
        "javascript:alert(1)",
        "$(touch /tmp/pwned)",
        "{env: X}",
        "%s%s%n",
        "\u202e\u0000\ufeff",
        "a" * 5000,
        "",
        "~root",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=40)
    | HOSTILE_TEXT
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def mutated_configs(draw: st.DrawFn) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    doc: dict[str, Any] = yaml.safe_load(yaml.safe_dump(BASE))
    changes = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(KEY_PATHS) | st.text(min_size=1, max_size=15))
        value = draw(VALUES)
        doc = with_(doc, path, value)
        changes.append((path, value))
    return doc, changes


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=mutated_configs())
def test_generated_hostile_configs_never_crash(
    tmp_path: Path, case: tuple[dict[str, Any], list[tuple[str, Any]]]
) -> None:
    doc, changes = case
    config = tmp_path / "patwarden.yaml"
    config.write_text(yaml.safe_dump(doc))
    config.chmod(0o600)

    result = CliRunner().invoke(cli, ["config", "check", "--config", str(config)])

    output = result.output
    assert result.exit_code in (0, 2), output
    if result.exit_code == 2:
        assert_clean_refusal(output, result.exit_code)
    for path, value in changes:
        if path.split(".")[-1] in SECRET_KEYS and isinstance(value, str) and len(value) >= 8:
            assert value not in output, f"the value at {path} was echoed"
    record("bad_input", kind="config-generated", tried=1)
