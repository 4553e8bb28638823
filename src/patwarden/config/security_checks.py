"""Warnings about a valid config that weakens a secret's protection (docs/security.md).

Not errors: each may be deliberate. ``patwarden config check`` prints them and ``patwarden doctor``
reports them as warnings, each with its key path and a fix:

- a Key Vault host outside the vault domain of the configured cloud (a fake "vault" would receive
  the PAT), unless ``azure.custom_vault_hosts`` marks it as a private endpoint or the emulator;
- a Key Vault token cache in plaintext (``plaintext: true``);
- a Key Vault token cache in a vault that a sink also writes, whose cache key lives in the same
  vault, or whose key is read by the identity that reads the cache (one identity, or one vault,
  then yields both the ciphertext and its key); and a cache read by an identity that also writes
  sinks (one stolen identity then holds the PATs and the rotator's refresh token).
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

from patwarden.config.clouds import CLOUD_VAULT_SUFFIX, authority_cloud
from patwarden.config.problems import Problem
from patwarden.config.refs import KeyVaultRef
from patwarden.config.schema import Config, KeyVaultCacheConfig

SECURITY_DOCS_HINT = "see docs/security.md"


def host_of(url: str) -> str:
    """The lower-case host name of *url* ("" when it has none)."""
    return (urlsplit(url).hostname or "").lower()


def vault_suffix(config: Config) -> str | None:
    """The vault DNS suffix of the configured cloud, or None for an unknown authority."""
    cloud = authority_cloud(config.azure.authority_host)
    return None if cloud is None else CLOUD_VAULT_SUFFIX[cloud]


def vault_urls(config: Config) -> Iterator[tuple[str, str]]:
    """Every ``(key path, vault URL)`` the config names: sinks, Key Vault caches, references."""
    for token_name, token in config.tokens.items():
        for index, sink in enumerate(token.sinks):
            if sink.get("kind") == "key_vault" and isinstance(sink.get("vault_url"), str):
                yield f"tokens.{token_name}.sinks[{index}].vault_url", sink["vault_url"]
    for name, identity in config.identities.items():
        cache = getattr(identity, "cache", None)
        if isinstance(cache, KeyVaultCacheConfig):
            yield f"identities.{name}.cache.vault_url", cache.vault_url
        for key, value in identity:
            if isinstance(value, KeyVaultRef):
                yield f"identities.{name}.{key}.key_vault.vault_url", value.key_vault.vault_url
            nested = getattr(value, "key", None)
            if isinstance(nested, KeyVaultRef):
                path = f"identities.{name}.{key}.key.key_vault.vault_url"
                yield path, nested.key_vault.vault_url


def _vault_host_warnings(config: Config) -> Iterator[Problem]:
    suffix = vault_suffix(config)
    for path, url in vault_urls(config):
        host = host_of(url)
        if host in config.azure.custom_vault_hosts:
            continue
        if suffix is not None and host.endswith(suffix):
            continue
        cloud = f"the cloud's vault domain (*{suffix})" if suffix else "a known vault domain"
        yield Problem(
            path=path,
            message=(
                f"the vault host {host} is outside {cloud}: whoever answers there receives the PAT "
                "(and a Key Vault token)"
            ),
            fix=(
                f"check the URL; if it is meant, mark it: azure: {{custom_vault_hosts: {{{host}: "
                f"private_endpoint}}}} (or: emulator) — {SECURITY_DOCS_HINT}"
            ),
        )


def _cache_warnings(config: Config) -> Iterator[Problem]:
    sink_hosts = {
        host_of(str(sink.get("vault_url", "")))
        for token in config.tokens.values()
        for sink in token.sinks
        if sink.get("kind") == "key_vault"
    }
    sink_identities = {
        str(sink["identity"])
        for token in config.tokens.values()
        for sink in token.sinks
        if sink.get("identity")
    }
    for name, identity in config.identities.items():
        cache = getattr(identity, "cache", None)
        if not isinstance(cache, KeyVaultCacheConfig):
            continue
        path = f"identities.{name}.cache"
        host = host_of(cache.vault_url)
        if cache.plaintext:
            yield Problem(
                path=f"{path}.plaintext",
                message="the rotator's refresh token is stored in plaintext in Key Vault: anyone "
                "who may read that secret can sign in as the rotator",
                fix="set key: {...} instead (make one with `patwarden config cache-key`) — "
                + SECURITY_DOCS_HINT,
            )
        if host in sink_hosts:
            yield Problem(
                path=f"{path}.vault_url",
                message=f"the token cache shares the vault {host} with a sink: an identity "
                "allowed to read the PATs there can read the rotator's refresh token too",
                fix="keep the cache in a vault of its own, readable only by its identity",
            )
        if cache.identity in sink_identities:
            yield Problem(
                path=f"{path}.identity",
                message=f"identity {cache.identity!r} reads the token cache and also writes "
                "sinks: whoever obtains it gets the PATs and the rotator's refresh token",
                fix="read the cache with an identity of its own (e.g. the runner's managed "
                "identity) and write sinks with another",
            )
        key = cache.key
        if isinstance(key, KeyVaultRef):
            if host_of(key.key_vault.vault_url) == host:
                yield Problem(
                    path=f"{path}.key.key_vault.vault_url",
                    message="the cache key lives in the same vault as the cache it encrypts",
                    fix="keep the key elsewhere ({env: NAME}, {file: PATH} or another vault)",
                )
            if key.key_vault.identity == cache.identity:
                yield Problem(
                    path=f"{path}.key.key_vault.identity",
                    message=f"identity {cache.identity!r} reads both the cache and its key",
                    fix="read the key with another identity, or supply it as {env: NAME}",
                )


def security_warnings(config: Config) -> list[Problem]:
    """Every warning about *config*, each with its key path and a fix (never a secret value)."""
    return [*_vault_host_warnings(config), *_cache_warnings(config)]
