"""What the emulated sinks really hold, read through the admin API (which reveals secrets)."""

from __future__ import annotations

from typing import Any

from tests.support.emulator import RunningEmulator

KEPT = {"OTHER": {"value": "kept"}}


def create_group(
    emulator: RunningEmulator,
    name: str = "gitops",
    project: str = "infra",
    variables: dict[str, Any] | None = None,
) -> int:
    """Create a variable group (Azure DevOps has no API for it; patwarden never creates one),
    holding *variables* (default: one plain ``OTHER`` that must be kept); return its id."""
    body = {"project": project, "name": name, "variables": KEPT if variables is None else variables}
    group_id: int = emulator.admin("POST", "/variable-groups", json=body).json()["id"]
    return group_id


def group_variables(emulator: RunningEmulator, group_id: int) -> dict[str, Any]:
    """A variable group's variables, with the values of its secret ones."""
    variables: dict[str, Any] = emulator.admin(
        "GET", f"/variable-groups/{group_id}/secrets"
    ).json()["variables"]
    return variables


def group_value(emulator: RunningEmulator, group_id: int, variable: str) -> str:
    """The stored value of a secret variable of a variable group."""
    return str(group_variables(emulator, group_id)[variable]["value"])


def key_vault_versions(emulator: RunningEmulator, secret: str) -> list[dict[str, Any]]:
    """Every version of a Key Vault secret, oldest first, with values and tags."""
    versions: list[dict[str, Any]] = emulator.admin("GET", f"/key-vault/secrets/{secret}").json()[
        "versions"
    ]
    return versions


def key_vault_value(emulator: RunningEmulator, secret: str) -> str:
    """The value the vault serves now: its newest version (the list is oldest first)."""
    newest = key_vault_versions(emulator, secret)[-1]
    assert newest["enabled"], f"the newest version of {secret} is disabled"
    return str(newest["value"])
