"""Config loading and validation: every problem at once, each with its key path and a fix."""

from __future__ import annotations

import json
import logging
import os
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from patwarden.config.model import (
    Config,
    EnvRef,
    FileCacheConfig,
    FileRef,
    KeyVaultCacheConfig,
    KeyVaultRef,
    ServicePrincipalIdentity,
    UserIdentity,
    load_config,
    resolve_config_path,
)
from patwarden.config.problems import InvalidConfig
from patwarden.errors import ConfigError

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "11111111-2222-3333-4444-555555555555"
ROTATOR = {"kind": "user", "client_id": CLIENT}
MINIMAL: dict[str, Any] = {
    "organization": "contoso",
    "azure": {"tenant_id": TENANT},
    "identities": {"rotator": ROTATOR},
}


def write(tmp_path: Path, data: dict[str, Any] | str, *, mode: int = 0o600) -> Path:
    path = tmp_path / "patwarden.yaml"
    text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
    path.write_text(text)
    path.chmod(mode)
    return path


def with_(**changes: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(MINIMAL))
    data.update(changes)
    return data


def problems(tmp_path: Path, data: dict[str, Any] | str) -> dict[str, str]:
    """Load a bad config; return {key path: rendered problem}."""
    with pytest.raises(InvalidConfig) as caught:
        load_config(write(tmp_path, data))
    assert caught.value.exit_code == 2
    return {problem.path: str(problem) for problem in caught.value.problems}


# --- good configs --------------------------------------------------------------------------------


def test_minimal_config_gets_public_azure_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert config.azure.authority_host == "https://login.microsoftonline.com"
    assert config.azure.azure_devops_url == "https://dev.azure.com"
    assert config.azure.vssps_url == "https://vssps.dev.azure.com"
    assert config.azure.is_well_known_authority
    assert config.azure.verify is True
    assert config.orgs == ("contoso",)
    assert config.rotator == "rotator"
    assert config.source == tmp_path / "patwarden.yaml"
    rotator = config.identity("rotator")
    assert isinstance(rotator, UserIdentity)
    assert isinstance(rotator.cache, FileCacheConfig)
    assert config.tenant_for("rotator") == TENANT
    assert config.state_dir == Path("~/.local/state/patwarden").expanduser()
    assert config.cache_path("rotator") == config.state_dir / "rotator.cache"


def test_full_example_from_the_docs(tmp_path: Path) -> None:
    text = textwrap.dedent(
        f"""\
        azure:
          authority_host: https://127.0.0.1:8443/
          azure_devops_url: https://127.0.0.1:8443/devops
          vssps_url: https://127.0.0.1:8443/vssps
          tenant_id: {TENANT}
          ca_bundle: ca.pem
        organizations: [contoso, fabrikam]
        state_dir: state
        identities:
          rotator:
            kind: user
            client_id: {CLIENT}
            username: svc-patwarden@contoso.com
            sign_in_frequency: 7d
            cache:
              kind: key_vault
              vault_url: https://ops-kv.vault.azure.net
              secret: patwarden-rotator-cache
              identity: writer
              key: {{file: /run/secrets/cache-key}}
          writer:
            {{kind: service_principal, client_id: {CLIENT}, client_secret: {{env: WRITER_SECRET}}}}
          cert:
            kind: service_principal
            client_id: {CLIENT}
            certificate: {{path: cert.pem, password: {{env: P}}}}
          mi: {{kind: managed_identity}}
          wif: {{kind: workload_identity, client_id: {CLIENT}, token_file: /var/run/token}}
          cli: {{kind: azure_cli}}
          old:
            kind: legacy_password
            client_id: {CLIENT}
            username: u@contoso.com
            password: {{env: P}}
            legacy_password_flow: true
          kvsp:
            kind: service_principal
            client_id: {CLIENT}
            client_secret:
              key_vault:
                {{vault_url: https://ops-kv.vault.azure.net, secret: sp-secret, identity: mi}}
        rotator: rotator
        auditor: old
        tokens:
          flux-git: {{organization: fabrikam, scopes: [vso.code], lifetime: 30d}}
        """
    )
    config = load_config(write(tmp_path, text))
    assert config.azure.authority_host == "https://127.0.0.1:8443"  # trailing slash dropped
    assert not config.azure.is_well_known_authority
    assert config.azure.ca_bundle == tmp_path / "ca.pem"  # relative to the config file
    # `verify` (for requests-based clients) is a PEM file of the default CAs plus the bundle; the
    # bundle does not exist in this example, so only its path is checked here (tests/test_tls.py).
    assert config.orgs == ("contoso", "fabrikam")
    assert config.state_dir == tmp_path / "state"
    rotator = config.identity("rotator")
    assert isinstance(rotator, UserIdentity)
    assert rotator.sign_in_frequency == timedelta(days=7)
    assert isinstance(rotator.cache, KeyVaultCacheConfig)
    assert rotator.cache.key == FileRef(file=Path("/run/secrets/cache-key"))
    writer = config.identity("writer")
    assert isinstance(writer, ServicePrincipalIdentity)
    assert writer.client_secret == EnvRef(env="WRITER_SECRET")
    cert = config.identity("cert")
    assert isinstance(cert, ServicePrincipalIdentity)
    assert cert.certificate is not None
    assert cert.certificate.path == tmp_path / "cert.pem"
    kvsp = config.identity("kvsp")
    assert isinstance(kvsp, ServicePrincipalIdentity)
    assert isinstance(kvsp.client_secret, KeyVaultRef)
    assert kvsp.client_secret.key_vault.identity == "mi"
    flux = config.tokens["flux-git"]
    assert flux.organization == "fabrikam"
    assert flux.scopes == ("vso.code",)
    assert flux.lifetime == timedelta(days=30)
    assert config.auditor == "old"


def test_config_is_frozen(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    with pytest.raises(ValueError, match="frozen"):
        config.rotator = "other"  # type: ignore[misc]


def test_empty_file_reports_the_missing_essentials(tmp_path: Path) -> None:
    found = problems(tmp_path, "")
    assert set(found) == {"organization", "identities"}


# --- the brief's headline messages ----------------------------------------------------------------


def test_literal_secret_is_refused_without_echoing_it(tmp_path: Path) -> None:
    data = with_()
    data["identities"]["writer"] = {
        "kind": "service_principal",
        "client_id": CLIENT,
        "client_secret": "s3cr3t-value-123",
    }
    with pytest.raises(InvalidConfig) as caught:
        load_config(write(tmp_path, data))
    text = str(caught.value)
    assert "s3cr3t-value-123" not in text
    assert (
        "identities.writer.client_secret: a secret must not be written into the config file" in text
    )
    assert "{env: AZURE_CLIENT_SECRET}" in text


def test_wrong_secret_reference_shape(tmp_path: Path) -> None:
    data = with_()
    data["identities"]["writer"] = {
        "kind": "service_principal",
        "client_id": CLIENT,
        "client_secret": {"vault": "x"},
    }
    found = problems(tmp_path, data)
    assert found["identities.writer.client_secret"] == (
        "identities.writer.client_secret: expected one of {env, file, key_vault}"
        " — e.g. {env: AZURE_CLIENT_SECRET}"
    )


@pytest.mark.parametrize(
    "kind", ["service_principal", "managed_identity", "workload_identity", "azure_cli"]
)
def test_app_identity_as_rotator_is_refused_before_any_network_call(
    tmp_path: Path, kind: str
) -> None:
    body: dict[str, Any] = {"kind": kind}
    if kind in ("service_principal", "workload_identity"):
        body["client_id"] = CLIENT
    if kind == "service_principal":
        body["client_secret"] = {"env": "X"}
    found = problems(tmp_path, with_(identities={"bot": body}, rotator="bot"))
    message = found["identities.bot.kind"]
    assert f"a {kind} cannot be the rotator" in message
    assert "accepts only a user's delegated Entra token" in message
    assert "patwarden login --identity bot" in message
    assert "drop the PAT where the consumer accepts Entra tokens" in message
    assert "identities.md#why-a-service-principal-cannot-rotate" in message


def test_legacy_password_needs_the_explicit_flag(tmp_path: Path) -> None:
    data = with_()
    data["identities"]["old"] = {
        "kind": "legacy_password",
        "client_id": CLIENT,
        "username": "u@contoso.com",
        "password": {"env": "P"},
    }
    found = problems(tmp_path, data)
    assert "deprecated, insecure and blocked by MFA" in found["identities.old.legacy_password_flow"]
    assert "legacy_password_flow: true" in found["identities.old.legacy_password_flow"]


# --- many bad configs, all reported together ------------------------------------------------------


def test_every_problem_is_reported_at_once_with_its_key_path(tmp_path: Path) -> None:
    text = textwrap.dedent(
        f"""\
        azure:
          authority_host: http://login.example.com
          tenant_id: not-a-tenant!
          ca_bundel: ca.pem
        organization: contoso
        identities:
          rotator: {{kind: user, client_id: {CLIENT}, sign_in_frequency: 7 days}}
          writer: {{kind: service_principal, client_id: nope, clinet_secret: {{env: X}}}}
          mi: {{kind: managed_idenity}}
          nokind: {{client_id: {CLIENT}}}
          kv:
            kind: user
            client_id: {CLIENT}
            cache:
              {{kind: key_vault, vault_url: https://v.vault.azure.net, secret: c, identity: ghost}}
          Bad_Name: {{kind: azure_cli}}
        auditor: nobody
        unknown_top: 1
        """
    )
    found = problems(tmp_path, text)
    expected = {
        "azure.authority_host": "must be an https:// URL",
        "azure.tenant_id": "must be a tenant GUID or a domain",
        "azure.ca_bundel": "did you mean 'ca_bundle'?",
        "identities.rotator.sign_in_frequency": "is not a duration",
        "identities.writer.client_id": "must be a GUID",
        "identities.writer.clinet_secret": "did you mean 'client_secret'?",
        "identities.mi.kind": "did you mean 'managed_identity'?",
        "identities.nokind.kind": "add kind: one of user, service_principal",
        "identities.kv.cache.identity": "no identity named 'ghost'",
        "identities.Bad_Name": "lowercase letters",
        "auditor": "no identity named 'nobody'",
        "unknown_top": "unknown key",
    }
    for path, words in expected.items():
        assert path in found, f"{path} missing from {sorted(found)}"
        assert words in found[path], found[path]


def test_error_message_lists_the_count_and_links_the_reference(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig) as caught:
        load_config(write(tmp_path, with_(organization=None, unknown=1)))
    text = str(caught.value)
    assert "2 problems in the configuration" in text
    assert "  - organization: no Azure DevOps organization — organization: contoso" in text
    assert "docs/configuration.md" in text


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        ({"organizations": ["contoso"]}, "organizations", "either organization or organizations"),
        ({"organization": "has space"}, "organization", "short name"),
        ({"rotator": "ghost"}, "rotator", "no identity named 'ghost'"),
        ({"azure": {"vssps_url": "https://x?y=1"}}, "azure.vssps_url", "query"),
        ({"state_dir": 5}, "state_dir", "path"),
        ({"tokens": {"t": "not a mapping"}}, "tokens.t", "dictionary"),
        (
            {"identities": {"rotator": {**ROTATOR, "cache": {"kind": "s3"}}}},
            "identities.rotator.cache.kind",
            "file or kind: key_vault",
        ),
        (
            {"identities": {"rotator": {**ROTATOR, "cache": {"key": "literal"}}}},
            "identities.rotator.cache.key",
            "must not be written",
        ),
        (
            {"identities": {"rotator": {**ROTATOR, "cache": {"key": {"keyring": False}}}}},
            "identities.rotator.cache.key.keyring",
            "true",
        ),
        (
            {"identities": {"rotator": {**ROTATOR, "sign_in_frequency": "0s"}}},
            "identities.rotator.sign_in_frequency",
            "longer than zero",
        ),
        (
            {"identities": {"rotator": {"kind": "user"}}},
            "identities.rotator.client_id",
            "add it, e.g. client_id:",
        ),
    ],
)
def test_single_problems(tmp_path: Path, change: dict[str, Any], path: str, words: str) -> None:
    found = problems(tmp_path, with_(**change))
    assert path in found, sorted(found)
    assert words in found[path]


def test_service_principal_needs_exactly_one_credential(tmp_path: Path) -> None:
    data = with_()
    data["identities"]["writer"] = {"kind": "service_principal", "client_id": CLIENT}
    data["identities"]["both"] = {
        "kind": "service_principal",
        "client_id": CLIENT,
        "client_secret": {"env": "X"},
        "certificate": {"path": "c.pem"},
    }
    found = problems(tmp_path, data)
    assert "exactly one of client_secret or certificate" in found["identities.writer"]
    assert "exactly one of client_secret or certificate" in found["identities.both"]


def test_identity_without_any_tenant(tmp_path: Path) -> None:
    found = problems(tmp_path, with_(azure={}))
    assert "no tenant" in found["identities.rotator.tenant_id"]


def test_key_vault_references_that_go_round_in_a_circle(tmp_path: Path) -> None:
    def sp(reads_with: str) -> dict[str, Any]:
        ref = {"vault_url": "https://v.vault.azure.net", "secret": "s", "identity": reads_with}
        return {
            "kind": "service_principal",
            "client_id": CLIENT,
            "client_secret": {"key_vault": ref},
        }

    data = with_()
    data["identities"].update({"a": sp("b"), "b": sp("a")})
    found = problems(tmp_path, data)
    assert "a -> b -> a" in found["identities.a"]


def test_unknown_kind_without_close_match_lists_the_kinds(tmp_path: Path) -> None:
    found = problems(tmp_path, with_(identities={"rotator": ROTATOR, "x": {"kind": "robot"}}))
    assert "allowed: user, service_principal, managed_identity" in found["identities.x.kind"]


# --- the file itself ------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.yaml")
    assert caught.value.exit_code == 2
    assert "not found" in str(caught.value)
    assert "PATWARDEN_CONFIG" in str(caught.value)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "organization: contoso\nidentities: [unclosed\n"))
    assert "is not valid YAML at line 3" in str(caught.value)


def test_duplicate_keys_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "organization: a\norganization: b\n"))
    assert "duplicate key 'organization'" in str(caught.value)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig) as caught:
        load_config(write(tmp_path, "- a\n- b\n"))
    assert "must be a mapping" in str(caught.value)


def test_world_readable_config_and_secret_files_warn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("x")
    secret.chmod(0o644)
    data = with_()
    data["identities"]["writer"] = {
        "kind": "service_principal",
        "client_id": CLIENT,
        "client_secret": {"file": "secret.txt"},
    }
    with caplog.at_level(logging.WARNING):
        load_config(write(tmp_path, data, mode=0o640))
    warnings = [record.getMessage() for record in caplog.records]
    assert any("config file" in m and "mode 640" in m for m in warnings), warnings
    assert any("secret file" in m and str(secret) in m for m in warnings), warnings


def test_private_files_do_not_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        load_config(write(tmp_path, MINIMAL))
    assert caplog.records == []


def test_config_path_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PATWARDEN_CONFIG", raising=False)
    assert resolve_config_path(None) == Path("patwarden.yaml")
    monkeypatch.setenv("PATWARDEN_CONFIG", str(tmp_path / "env.yaml"))
    assert resolve_config_path(None) == tmp_path / "env.yaml"
    assert resolve_config_path(tmp_path / "flag.yaml") == tmp_path / "flag.yaml"


def test_json_schema_describes_identities_and_forbids_extra_keys() -> None:
    schema = Config.model_json_schema()
    assert schema["additionalProperties"] is False
    assert "identities" in schema["properties"]
    kinds = {
        definition["properties"]["kind"].get("const")
        for definition in schema["$defs"].values()
        if "kind" in definition.get("properties", {})
    }
    assert {
        "user",
        "service_principal",
        "managed_identity",
        "workload_identity",
        "azure_cli",
    } <= kinds


def test_loading_does_not_read_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UNSET_SECRET", raising=False)
    data = with_()
    data["identities"]["writer"] = {
        "kind": "service_principal",
        "client_id": CLIENT,
        "client_secret": {"env": "UNSET_SECRET"},
    }
    config = load_config(write(tmp_path, data))
    assert "UNSET_SECRET" not in os.environ
    assert isinstance(config.identity("writer"), ServicePrincipalIdentity)
