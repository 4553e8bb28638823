"""Identity references (``IdentityRef``) on emulated Library objects.

``createdBy``/``modifiedBy`` on variable groups and ``createdBy`` on service endpoints are
objects with a GUID ``id``, ``displayName``, ``uniqueName``, ``url`` and ``imageUrl``, as in every
spec example (MicrosoftDocs/vsts-rest-api-specs,
``specification/distributedTask/7.2/httpExamples/variablegroups/GET_VariableGroup.json``).
The ``id`` of a caller is the one ``connectionData`` reports for it. The reference is stored as
JSON; a plain name left by an older state directory still renders, with a stable GUID derived
from the name.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from patwarden_emulator.devops.auth import Caller
from patwarden_emulator.devops.state import DevopsState

# Objects created through the admin API are "created by" this fixed identity.
ADMIN_IDENTITY = {
    "id": "5b9c1b4e-6f6a-4c55-9d3e-0e6d8c1f2a77",
    "displayName": "Emulator Administrator",
    "uniqueName": "emulator-admin@emulator.invalid",
}


def caller_ref(caller: Caller) -> str:
    """The stored form of *caller*'s identity reference."""
    if caller.user is not None:
        unique = caller.user.upn
        ref = {"id": caller.object_id, "displayName": caller.user.display_name}
        ref.update(uniqueName=unique, descriptor=caller.user.descriptor)
    else:
        ref = {"id": caller.object_id, "displayName": caller.name, "uniqueName": caller.object_id}
    return json.dumps(ref)


def admin_ref() -> str:
    """The stored form of the admin API's identity reference."""
    return json.dumps(ADMIN_IDENTITY)


def render(stored: str, *, vssps_url: str, devops_url: str, org: str) -> dict[str, Any]:
    """The ``IdentityRef`` document for a stored reference."""
    try:
        found = json.loads(stored)
    except ValueError:
        found = None
    if not isinstance(found, dict) or "id" not in found:
        name = str(stored)
        found = {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"patwarden-emulator:{name}")),
            "displayName": name,
            "uniqueName": name,
        }
    ref: dict[str, Any] = {
        "displayName": found.get("displayName"),
        "url": f"{vssps_url}/{org}/_apis/Identities/{found['id']}",
        "id": found["id"],
        "uniqueName": found.get("uniqueName"),
        "imageUrl": f"{devops_url}/{org}/_api/_common/identityImage?id={found['id']}",
    }
    if found.get("descriptor"):
        ref["descriptor"] = found["descriptor"]
    return ref


def render_stored(state: DevopsState, org_id: str, stored: str) -> dict[str, Any]:
    """:func:`render` for a reference stored on a row of organization *org_id*."""
    row = state.store.one("SELECT name FROM devops_orgs WHERE id = ?", (org_id,))
    return render(
        stored,
        vssps_url=state.emu.vssps_url,
        devops_url=state.emu.azure_devops_url,
        org=row["name"] if row is not None else "",
    )
