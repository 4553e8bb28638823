"""patwarden.yaml files pointing at the emulator, and the token entries that go into them.

Two kinds: :func:`write_config` starts from the example config the emulator writes (what the CLI
tests and a user start from), :func:`emulator_config` builds one from the identities a test names
(:func:`user_identity`, :func:`sp_identity`). Either way patwarden's state lives in
``tmp_path / "state"`` (one token cache per test) and the file is private (0600).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.support.emulator import RunningEmulator

KEY_ENV = "PATWARDEN_CACHE_KEY"


def save_config(path: Path, data: dict[str, Any], *, sort_keys: bool = True) -> Path:
    """Write *data* as YAML to *path*, readable by its owner only (patwarden insists)."""
    path.write_text(yaml.safe_dump(data, sort_keys=sort_keys))
    path.chmod(0o600)
    return path


def azure_settings(emulator: RunningEmulator) -> dict[str, Any]:
    """The ``azure:`` section: the emulator's endpoints, tenant and CA."""
    return {
        "authority_host": emulator["authority_host"],
        "azure_devops_url": emulator["azure_devops_url"],
        "vssps_url": emulator["vssps_url"],
        "tenant_id": emulator["tenant_id"],
        "ca_bundle": emulator.ca_bundle,
        "custom_vault_hosts": {"127.0.0.1": "emulator"},  # its vault is not *.vault.azure.net
    }


def user_identity(
    emulator: RunningEmulator, who: str = "rotator", **settings: Any
) -> dict[str, Any]:
    """A user identity signing in as the seeded user *who* (``rotator``, ``org_admin``) through
    the public client, its file cache keyed from ``$PATWARDEN_CACHE_KEY``; *settings* override."""
    ids = emulator["identities"]
    return {
        "kind": "user",
        "client_id": ids["public_client"]["client_id"],
        "username": ids[who]["username"],
        "cache": {"key": {"env": KEY_ENV}},
        **settings,
    }


def sp_identity(emulator: RunningEmulator, secret_env: str) -> dict[str, Any]:
    """The seeded service principal, its secret read from the environment variable *secret_env*."""
    return {
        "kind": "service_principal",
        "client_id": emulator["identities"]["service_principal"]["client_id"],
        "client_secret": {"env": secret_env},
    }


def emulator_config(
    emulator: RunningEmulator, tmp_path: Path, *, identities: dict[str, Any], **settings: Any
) -> Path:
    """``tmp_path / "patwarden.yaml"`` for the emulator's organization with *identities* and any
    other top-level *settings* (``auditor``, ``rotator``, …)."""
    data = {
        "azure": azure_settings(emulator),
        "organization": emulator["organization"],
        "state_dir": str(tmp_path / "state"),
        "identities": identities,
        **settings,
    }
    return save_config(tmp_path / "patwarden.yaml", data)


def write_config(
    emulator: RunningEmulator,
    tmp_path: Path,
    *,
    rotator: str | None = None,
    identities: dict[str, Any] | None = None,
    rotator_settings: dict[str, Any] | None = None,
    tokens: dict[str, Any] | None = None,
    **settings: Any,
) -> Path:
    """The emulator's example config, with patwarden's state in *tmp_path* (one cache per test).

    *rotator_settings* change the rotator identity (a mapping such as ``cache`` is merged into
    the example's); other top-level *settings* replace the example's (``organizations`` replaces
    its ``organization``).
    """
    example = Path(emulator["example_config"])
    data = yaml.safe_load(example.read_text())
    data["state_dir"] = str(tmp_path / "state")
    user = data["identities"]["rotator"]
    for key, value in (rotator_settings or {}).items():
        user[key] = {**user[key], **value} if isinstance(value, dict) else value
    data["identities"].update(identities or {})
    if rotator is not None:
        data["rotator"] = rotator
    data["tokens"] = tokens or {}  # not the example's token: each test declares its own
    if "organizations" in settings:
        data.pop("organization", None)
    data.update(settings)
    return save_config(tmp_path / "patwarden.yaml", data, sort_keys=False)


def sink_dir(tmp_path: Path) -> Path:
    """A private directory for file sinks (the file sink refuses group-writable directories)."""
    path = tmp_path / "sinks"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def token_entry(
    emulator: RunningEmulator,
    tmp_path: Path,
    name: str,
    *,
    group: bool = True,
    revoke_after: str = "1d",
    **extra: Any,
) -> dict[str, Any]:
    """A token with a Key Vault sink, a file sink and (optionally) a variable-group sink."""
    sinks: list[dict[str, Any]] = [
        {
            "kind": "key_vault",
            "vault_url": emulator["key_vault_url"],
            "secret": f"{name}-pat",
            "identity": "writer",
        },
        {"kind": "file", "path": str(sink_dir(tmp_path) / f"{name}.pat")},
    ]
    if group:
        sinks.append(
            {
                "kind": "variable_group",
                "project": "infra",
                "group": "gitops",
                "variable": f"{name.upper().replace('-', '_')}_PAT",
                "identity": "writer",
            }
        )
    return {
        "scopes": ["vso.code"],
        "lifetime": "30d",
        "rotate_before": "7d",
        "revoke_after": revoke_after,
        "sinks": sinks,
        **extra,
    }
