"""Conditional Access switches of the emulated tenant (``/_admin/conditional-access``).

Each switch answers with Entra's error shape (``error``, ``error_description`` with the AADSTS
code, ``error_codes``, ``suberror`` where Entra sends one):

- ``block_device_code`` — the "Authentication flows" condition: the device-code request itself is
  refused (AADSTS53003), and so is every refresh of a session born from a device code (Entra
  "protocol-tracks" such sessions, so the block follows them).
- ``require_compliant_device`` — AADSTS53000 at every sign-in and refresh: the emulated client is
  never on a compliant (Intune-managed) device.
- ``block_location`` — AADSTS53003 at every sign-in and refresh: the caller's network (loopback)
  is outside the allowed named locations.
- ``token_protection`` — AADSTS530084 at every refresh and sign-in: the emulated client cannot
  bind its sign-in session to a device key.

``users`` limits the switches to some user principal names (empty: everyone). Sign-in frequency,
session revocation and password reset are per-user actions of :mod:`patwarden_emulator.entra.admin`.
The switches live in memory and ``POST /_admin/reset`` clears them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any

from patwarden_emulator.context import Emulator
from patwarden_emulator.directory import User
from patwarden_emulator.entra.errors import AadError

_RUNTIME_KEY = "entra_conditional_access"
DEVICE_CODE_FLOW = "device_code"
_BLOCKED = (
    "Access has been blocked by Conditional Access policies. The access policy does not allow "
    "token issuance."
)


@dataclass(frozen=True)
class ConditionalAccess:
    """The tenant's Conditional Access switches (all off by default)."""

    block_device_code: bool = False
    require_compliant_device: bool = False
    block_location: bool = False
    token_protection: bool = False
    users: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The admin API's view."""
        document = asdict(self)
        document["users"] = list(self.users)
        return document

    def applies_to(self, user: User) -> bool:
        """Whether the switches cover *user*."""
        return not self.users or user.upn.lower() in self.users


def current(emu: Emulator) -> ConditionalAccess:
    """The switches in force."""
    found = emu.runtime.get(_RUNTIME_KEY)
    return found if isinstance(found, ConditionalAccess) else ConditionalAccess()


def update(emu: Emulator, document: dict[str, Any]) -> ConditionalAccess:
    """Merge a (partial) admin document into the switches.

    Raises:
        ValueError: an unknown key or a value of the wrong kind (the message names it).
    """
    now = current(emu)
    known = set(asdict(now))
    unknown = sorted(set(document) - known)
    if unknown:
        raise ValueError(f"unknown keys: {', '.join(unknown)}; known: {sorted(known)}")
    changes: dict[str, Any] = {}
    for key, value in document.items():
        if key == "users":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError("users must be a list of user principal names")
            changes[key] = tuple(v.lower() for v in value)
        elif not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false")
        else:
            changes[key] = value
    updated = replace(now, **changes)
    emu.runtime[_RUNTIME_KEY] = updated
    return updated


def clear(emu: Emulator) -> None:
    """Every switch off (emulator reset)."""
    emu.runtime.pop(_RUNTIME_KEY, None)


def _refused(code: int, message: str, *, error: str) -> AadError:
    return AadError(code, error, message, suberror="message_only")


def check_device_code_request(emu: Emulator) -> None:
    """The device-code request itself (no user known yet).

    Raises:
        AadError: AADSTS53003 when the tenant blocks the device-code flow.
    """
    if current(emu).block_device_code and not current(emu).users:
        raise _refused(
            53003,
            f"{_BLOCKED} The authentication flows policy blocks the device code flow.",
            error="access_denied",
        )


def check_token(emu: Emulator, user: User, *, flow: str, error: str = "invalid_grant") -> None:
    """Evaluate the switches for a token issued to *user* from a session born of *flow*.

    Raises:
        AadError: the first switch that refuses, in the order of the module docstring.
    """
    policy = current(emu)
    if not policy.applies_to(user):
        return
    if policy.block_device_code and flow == DEVICE_CODE_FLOW:
        raise _refused(
            53003,
            f"{_BLOCKED} The authentication flows policy blocks the device code flow; the "
            "session was started with a device code.",
            error=error,
        )
    if policy.require_compliant_device:
        raise _refused(
            53000,
            "Device is not in required device state: compliant. Conditional Access policy "
            "requires a compliant device, and the device is not compliant. The user must enroll "
            "their device with an approved MDM provider like Intune.",
            error=error,
        )
    if policy.block_location:
        raise _refused(
            53003,
            f"{_BLOCKED} The sign-in came from a location outside the allowed named locations.",
            error=error,
        )
    if policy.token_protection:
        raise _refused(
            530084,
            "Access has been blocked by token protection sign-in session policy: the sign-in "
            "session is not bound to a device the policy supports.",
            error=error,
        )


def declares_cae(claims: str | None) -> bool:
    """Whether a token request's ``claims`` declare the CAE client capability ``CP1``."""
    if not claims:
        return False
    try:
        document = json.loads(claims)
        values = document["access_token"]["xms_cc"]["values"]
    except (ValueError, KeyError, TypeError):
        return False
    return isinstance(values, list) and "CP1" in values
