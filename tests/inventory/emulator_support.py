"""Seed the emulator with a known PAT population, and the auditor's config, for inventory tests.

The population has PATs of every finding kind and exact expected counts (:data:`EXPECTED`):
seeded through the admin API (`POST /_admin/users`, `PATCH /_admin/users/{u}`,
`POST /_admin/pats`, `POST /_admin/organizations`), never through the code under test.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from patwarden.inventory.findings import GLOBAL_PAT_RETIREMENT
from tests.conftest import RunningEmulator
from tests.support import clock
from tests.support.configs import emulator_config, sp_identity, user_identity

MANAGED_NAME = "patwarden:flux-git:0123456789abcdef0123456789abcdef"
SECOND_ORG = "fabrikam"

# Findings the population must produce when contoso is scanned (every other kind: 0).
EXPECTED: dict[str, int] = {
    "global": 2,
    "full-access": 1,
    "expiring": 1,
    "long-lived": 1,
    "broad-scope": 1,
    "owner-disabled": 1,
    "owner-removed": 1,
    "expired": 2,
}
EXPECTED_PATS = 12  # in contoso (dave's one PAT is bound to fabrikam)
EXPECTED_STATUS = {"active": 9, "expired": 2, "revoked": 1}


def globals_retired() -> bool:
    """Whether global PATs have stopped working at the tests' "now" (contract §7): from then on
    the two global PATs' findings are low ("revoke it") instead of high ("replace it before")."""
    return clock.now() >= GLOBAL_PAT_RETIREMENT


def high_or_worse() -> int:
    """Findings of severity high or worse in the population at the tests' "now"."""
    return 3 if globals_retired() else 5


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seed_population(emulator: RunningEmulator) -> dict[str, str]:
    """Create users and PATs of every finding kind; return {label: authorization id}."""
    now = clock.now()  # the tests' clock: CI also runs these at pinned dates
    day = timedelta(days=1)
    emulator.admin("POST", "/organizations", json={"name": SECOND_ORG})
    for user in ("alice", "bob", "carol", "dave"):
        emulator.admin("POST", "/users", json={"username": f"{user}@contoso.example"})

    ids: dict[str, str] = {}

    def pat(label: str, user: str, **fields: Any) -> None:
        body = {
            "username": user if "@" in user else f"{user}@contoso.example",
            "displayName": fields.pop("displayName", label),
            "scope": fields.pop("scope", "vso.packaging"),
            "validFrom": _iso(fields.pop("validFrom", now - 10 * day)),
            "validTo": _iso(fields.pop("validTo", now + 30 * day)),
            **fields,
        }
        ids[label] = emulator.admin("POST", "/pats", json=body).json()["authorizationId"]

    pat("clean", "alice")
    pat("global", "alice", scope="vso.code", allOrgs=True)
    pat("full", "alice", scope="app_token")
    pat("expiring", "alice", validTo=now + 5 * day)
    pat("long-lived", "alice", validTo=now + 170 * day)
    pat("broad", "alice", scope="vso.code_write vso.work")
    pat("expired-alice", "alice", validFrom=now - 40 * day, validTo=now - 2 * day)
    pat("revoked", "alice", scope="app_token", allOrgs=True, revoked=True)
    # Managed: the configured rotator's PAT of the configured token flux-git (auditor_config).
    rotator = str(emulator["identities"]["rotator"]["username"])
    pat("managed", rotator, displayName=MANAGED_NAME, scope="vso.code", allOrgs=True)
    pat("disabled-owner", "bob", scope="vso.code")
    pat("expired-bob", "bob", scope="app_token", validFrom=now - 40 * day, validTo=now - day)
    pat("removed-owner", "carol", scope="vso.work")
    pat("fabrikam-only", "dave", scope="vso.code", organization=SECOND_ORG)
    emulator.admin("PATCH", "/users/bob@contoso.example", json={"enabled": False})
    emulator.admin("PATCH", "/users/carol@contoso.example", json={"removed": True})
    return ids


def auditor_config(emulator: RunningEmulator, tmp_path: Path, *, auditor: str = "auditor") -> Path:
    """A patwarden.yaml for the emulator: `auditor` is the org admin user, `sp` the service
    principal (secret from $INVENTORY_SP_SECRET). The auditor signs in with
    :func:`tests.support.device_codes.login`."""
    identities = {
        "auditor": user_identity(emulator, "org_admin"),
        "rotator": user_identity(emulator, "rotator"),
        "sp": sp_identity(emulator, "INVENTORY_SP_SECRET"),
    }
    # flux-git is a managed token: the rotator's PATs marked for it are managed (MANAGED_NAME).
    tokens = {"flux-git": {"scopes": ["vso.code"], "lifetime": "30d", "rotate_before": "7d"}}
    return emulator_config(
        emulator, tmp_path, identities=identities, auditor=auditor, tokens=tokens
    )
