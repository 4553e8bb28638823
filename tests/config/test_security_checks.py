"""Configs that weaken a secret's protection: refused, or warned about (issue 11, items 3 and 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from patwarden.config.model import load_config
from patwarden.config.problems import InvalidConfig
from patwarden.config.security_checks import security_warnings

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "11111111-2222-3333-4444-555555555555"
WRITER = "22222222-2222-3333-4444-555555555555"
TOKEN = {"scopes": ["vso.code"], "lifetime": "30d", "rotate_before": "7d"}
SINK = {
    "kind": "key_vault",
    "vault_url": "https://ops-kv.vault.azure.net",
    "secret": "flux",
    "identity": "writer",
}


def config(tmp_path: Path, *, cache: dict[str, Any] | None = None, **top: Any) -> Path:
    rotator: dict[str, Any] = {"kind": "user", "client_id": CLIENT}
    if cache is not None:
        rotator["cache"] = cache
    data: dict[str, Any] = {
        "organization": "contoso",
        "azure": {"tenant_id": TENANT},
        "identities": {
            "rotator": rotator,
            "writer": {
                "kind": "service_principal",
                "client_id": WRITER,
                "client_secret": {"env": "S"},
            },
            "runner": {"kind": "managed_identity"},
        },
        "tokens": {"flux": {**TOKEN, "sinks": [SINK]}},
        **top,
    }
    path = tmp_path / "patwarden.yaml"
    path.write_text(yaml.safe_dump(data))
    path.chmod(0o600)
    return path


def warnings(tmp_path: Path, **settings: Any) -> dict[str, str]:
    return {w.path: str(w) for w in security_warnings(load_config(config(tmp_path, **settings)))}


def kv_cache(**keys: Any) -> dict[str, Any]:
    base = {
        "kind": "key_vault",
        "vault_url": "https://cache-kv.vault.azure.net",
        "secret": "rotator-cache",
        "identity": "writer",
    }
    return {**base, **keys}


def test_a_plain_public_cloud_config_has_no_warning(tmp_path: Path) -> None:
    cache = kv_cache(key={"env": "PATWARDEN_CACHE_KEY"}, identity="runner")
    assert warnings(tmp_path, cache=cache) == {}


def test_a_cache_read_by_an_identity_that_writes_sinks_is_warned_about(tmp_path: Path) -> None:
    found = warnings(tmp_path, cache=kv_cache(key={"env": "PATWARDEN_CACHE_KEY"}))
    assert (
        "reads the token cache and also writes sinks" in found["identities.rotator.cache.identity"]
    )


def test_a_key_vault_cache_without_a_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig) as caught:
        load_config(config(tmp_path, cache=kv_cache()))
    (problem,) = caught.value.problems
    assert problem.path == "identities.rotator.cache"
    assert "needs `key` to encrypt the refresh token" in problem.message
    assert problem.fix is not None
    assert "plaintext: true" in problem.fix


def test_plaintext_must_be_explicit_and_is_warned_about(tmp_path: Path) -> None:
    found = warnings(tmp_path, cache=kv_cache(plaintext=True))
    assert "refresh token is stored in plaintext" in found["identities.rotator.cache.plaintext"]
    with pytest.raises(InvalidConfig, match="contradicts `key`"):
        load_config(config(tmp_path, cache=kv_cache(plaintext=True, key={"env": "K"})))


def test_a_cache_sharing_a_vault_with_a_sink_or_its_key_is_warned_about(tmp_path: Path) -> None:
    shared = "https://ops-kv.vault.azure.net"  # the sink's vault
    key = {"key_vault": {"vault_url": shared, "secret": "cache-key", "identity": "writer"}}
    found = warnings(tmp_path, cache=kv_cache(vault_url=shared, key=key))
    assert (
        "shares the vault ops-kv.vault.azure.net with a sink"
        in found["identities.rotator.cache.vault_url"]
    )
    assert "same vault as the cache" in found["identities.rotator.cache.key.key_vault.vault_url"]
    assert (
        "reads both the cache and its key"
        in found["identities.rotator.cache.key.key_vault.identity"]
    )


@pytest.mark.parametrize(
    "host",
    ["ops-kv.vault.azure.net.attacker.example", "kv.internal.example", "ops-kv.vault.azure.cn"],
)
def test_a_vault_outside_the_clouds_domain_is_warned_about_unless_marked(
    tmp_path: Path, host: str
) -> None:
    sink = {**SINK, "vault_url": f"https://{host}"}
    data = {"tokens": {"flux": {**TOKEN, "sinks": [sink]}}}
    found = warnings(tmp_path, **data)
    message = found["tokens.flux.sinks[0].vault_url"]
    assert (
        f"the vault host {host} is outside the cloud's vault domain (*.vault.azure.net)" in message
    )
    assert "custom_vault_hosts" in message
    marked = {"tenant_id": TENANT, "custom_vault_hosts": {host: "private_endpoint"}}
    assert warnings(tmp_path, azure=marked, **data) == {}


def test_config_check_prints_the_warnings(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from patwarden.cli.main import cli

    path = config(tmp_path, cache=kv_cache(plaintext=True))
    result = CliRunner().invoke(cli, ["config", "check", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "OK: " in result.output
    assert (
        "warning: identities.rotator.cache.plaintext: the rotator's refresh token" in result.output
    )
