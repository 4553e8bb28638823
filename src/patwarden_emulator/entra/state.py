"""The Entra emulator's tables, created once per emulator and kept in ``Emulator.runtime``."""

from __future__ import annotations

from dataclasses import dataclass, field

from patwarden_emulator.context import Emulator
from patwarden_emulator.entra import conditional_access
from patwarden_emulator.entra import federation as entra_federation
from patwarden_emulator.entra.codes import AuthCodes
from patwarden_emulator.entra.device import DeviceCodes
from patwarden_emulator.entra.sessions import Sessions

_RUNTIME_KEY = "entra"


@dataclass(frozen=True)
class EntraState:
    """Refresh tokens, user policies, device codes and authorization codes of one emulator."""

    sessions: Sessions
    device_codes: DeviceCodes
    auth_codes: AuthCodes
    # Authorization requests waiting for the person on the sign-in page (in memory).
    sign_ins: dict[str, object] = field(default_factory=dict)


def entra_state(emu: Emulator) -> EntraState:
    """Return (creating on first use) the Entra tables of *emu*."""
    current = emu.runtime.get(_RUNTIME_KEY)
    if not isinstance(current, EntraState):
        emu.store.ensure_schema(entra_federation.SCHEMA)
        current = EntraState(
            sessions=Sessions(emu.store),
            device_codes=DeviceCodes(emu.store),
            auth_codes=AuthCodes(emu.store),
        )
        emu.runtime[_RUNTIME_KEY] = current
    return current


def reset_state(emu: Emulator) -> None:
    """Forget every refresh token, user policy, device and authorization code, pending sign-in,
    Conditional Access switch and federated credential.

    The directory (users added through the admin API, seeded flags and passwords) is restored by
    the admin module's reset, which calls this through ``entra.reset``.
    """
    state = entra_state(emu)
    state.sessions.clear()
    state.device_codes.clear()
    state.auth_codes.clear()
    state.sign_ins.clear()
    conditional_access.clear(emu)
    entra_federation.clear(emu)
