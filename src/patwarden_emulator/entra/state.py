"""The Entra emulator's tables, created once per emulator and kept in ``Emulator.runtime``."""

from __future__ import annotations

from dataclasses import dataclass

from patwarden_emulator.context import Emulator
from patwarden_emulator.entra import federation as entra_federation
from patwarden_emulator.entra.device import DeviceCodes
from patwarden_emulator.entra.sessions import Sessions

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
    """Forget every refresh token, user policy, device code and federated credential.

    The directory (users added through the admin API, seeded flags and passwords) is restored by
    the admin module's reset, which calls this through ``entra.reset``.
    """
    state = entra_state(emu)
    state.sessions.clear()
    state.device_codes.clear()
    entra_federation.clear(emu)
