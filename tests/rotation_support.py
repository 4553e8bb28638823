"""Helpers for rotation tests against the emulator: token configs and what each sink really holds.

The sinks' contents are read through the emulator's admin API (which reveals stored secrets), and
each value is tried with Basic auth on ``connectionData``: that is what "the sink holds a PAT that
authenticates" means in these tests.
"""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path
from typing import Any

from tests.conftest import RunningEmulator

SUPPRESS = {"X-TFS-FedAuthRedirect": "Suppress", "Accept": "application/json"}


def create_group(emulator: RunningEmulator, name: str = "gitops", project: str = "infra") -> int:
    """Create a variable group (Azure DevOps has no API for it; patwarden never creates one)."""
    body = {"project": project, "name": name, "variables": {"OTHER": {"value": "kept"}}}
    group_id: int = emulator.admin("POST", "/variable-groups", json=body).json()["id"]
    return group_id


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


def group_value(emulator: RunningEmulator, group_id: int, variable: str) -> str:
    """The stored value of a secret variable of a variable group."""
    variables = emulator.admin("GET", f"/variable-groups/{group_id}/secrets").json()["variables"]
    return str(variables[variable]["value"])


def pat_status(emulator: RunningEmulator, pat: str, org: str = "contoso") -> int:
    """The HTTP status of ``connectionData`` with *pat* as Basic auth (200: it authenticates)."""
    encoded = base64.b64encode(f":{pat}".encode()).decode()
    with emulator.http() as client:
        response = client.get(
            f"{emulator['azure_devops_url']}/{org}/_apis/connectionData",
            headers={"Authorization": f"Basic {encoded}", **SUPPRESS},
        )
    return response.status_code


def check_pat(
    emulator: RunningEmulator, pat: str, *, works: bool, what: str, org: str = "contoso"
) -> None:
    """Assert that *pat* authenticates in *org* (or not) without ever showing its value.

    This module is not assertion-rewritten by pytest, so a failure shows only the message.
    """
    status = pat_status(emulator, pat, org)
    expected = "authenticate" if works else "be refused"
    assert (status == 200) is works, f"{what}: expected the PAT to {expected}, got HTTP {status}"


def check_same(first: str, second: str, *, what: str) -> None:
    """Assert two secret values are equal without showing them in a failure."""
    assert first == second, f"{what}: the values differ"


def assert_no_secret_in_state(emulator: RunningEmulator, state_db: Path) -> None:
    """No issued secret appears in the state database or its WAL, byte for byte."""
    with sqlite3.connect(state_db) as conn:
        conn.execute("PRAGMA wal_checkpoint(FULL)")
    conn.close()
    blobs = [
        path.read_bytes()
        for path in state_db.parent.iterdir()
        if path.name.startswith(state_db.name) and path.is_file()
    ]
    issued = emulator.admin("GET", "/issued-secrets").json()["secrets"]
    assert issued, "the emulator issued secrets during the test"
    for item in issued:
        value = str(item["value"]).encode()
        for blob in blobs:
            assert value not in blob, f"a {item['kind']} is stored in the state database"
