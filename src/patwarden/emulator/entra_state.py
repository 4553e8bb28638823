"""The Entra emulator's tables, created once per emulator and kept in ``Emulator.runtime``."""

from __future__ import annotations

from dataclasses import dataclass

from patwarden.emulator import entra_federation
from patwarden.emulator.context import Emulator
from patwarden.emulator.entra_device import DeviceCodes
from patwarden.emulator.entra_sessions import Sessions

_RUNTIME_KEY = "entra"


@dataclass(frozen=True)
class EntraState:
    """Refresh tokens, user policies and device codes of one emulator."""

    sessions: Sessions
    device_codes: DeviceCodes


def entra_state(emu: Emulator) -> EntraState:
    """Return (creating on first use) the Entra tables of *emu*."""
    current = emu.runtime.get(_RUNTIME_KEY)
    if not isinstance(current, EntraState):
        emu.store.ensure_schema(entra_federation.SCHEMA)
        current = EntraState(sessions=Sessions(emu.store), device_codes=DeviceCodes(emu.store))
        emu.runtime[_RUNTIME_KEY] = current
    return current


def reset_state(emu: Emulator) -> None:
    """Back to "freshly seeded": no sessions, policies, device codes or federated credentials,
    only the seeded users, with their seeded flags."""
    state = entra_state(emu)
    state.sessions.clear()
    state.device_codes.clear()
    entra_federation.clear(emu)
    ids = emu.identities
    emu.directory.reset(keep={ids.rotator.oid, ids.org_admin.oid, ids.legacy_user.oid})
    for user in (ids.rotator, ids.org_admin, ids.legacy_user):
        emu.directory.set_user_flags(
            user.oid,
            enabled=user.enabled,
            removed=user.removed,
            mfa_required=user.mfa_required,
            org_admin=user.org_admin,
        )
