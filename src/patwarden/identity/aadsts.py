"""What an Entra ``AADSTSnnnn`` error means for patwarden, and what the operator should do.

Pure: no I/O. Entra documents that clients should branch on ``error`` and ``error_codes``, never on
the free-text ``error_description`` (contract §4.4); the description is only read as a fallback to
find a code when ``error_codes`` is absent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from patwarden.errors import DOCS

TROUBLESHOOTING = f"{DOCS}/identities.md#troubleshooting"
_CODE_IN_TEXT = re.compile(r"AADSTS(\d{4,7})")
# OAuth error values that mean "try again", not "sign in again".
TRANSIENT_ERRORS = frozenset({"temporarily_unavailable", "server_error", "service_unavailable"})


@dataclass(frozen=True, kw_only=True)
class AadstsExplanation:
    """A known (or unknown) Entra error code, explained."""

    code: int | None
    cause: str
    fix: str
    # True when a human must sign in again; False when the fix is configuration (secret, app).
    needs_login: bool = True
    # The troubleshooting row when it is not ``aadsts<code>`` (one code, several situations).
    row: str | None = None

    @property
    def anchor(self) -> str:
        """Link into the troubleshooting table of docs/identities.md."""
        if self.row is not None:
            return f"{DOCS}/identities.md#{self.row}"
        if self.code is not None and self.code in KNOWN_CODES:
            return f"{DOCS}/identities.md#aadsts{self.code}"
        return TROUBLESHOOTING


_LOGIN = "run `patwarden login --identity {identity}` again"
_BROWSER_LOGIN = "run `patwarden login --identity {identity} --browser`"
# Where an Entra answer came from, for codes that mean different things at different steps.
DEVICE_CODE_REQUEST = "device_code_request"  # asking Entra for a device code
DEVICE_CODE_SESSION = "device_code"  # refreshing a sign-in that was made with a device code

KNOWN_CODES: Mapping[int, AadstsExplanation] = {
    explanation.code: explanation
    for explanation in (
        AadstsExplanation(
            code=700082,
            cause="the refresh token expired after 90 days without use",
            fix=(
                f"{_LOGIN}, then run patwarden at least every few weeks so the sign-in keeps "
                "sliding"
            ),
        ),
        AadstsExplanation(
            code=50173,
            cause=(
                "the grant was revoked: the password was changed or reset, an admin revoked the "
                "user's sessions, or Entra ID Protection flagged the user as risky"
            ),
            fix=(
                f"{_LOGIN}; if it was not planned, check the user's audit and risk logs for who "
                "revoked the sessions or reset the password"
            ),
        ),
        AadstsExplanation(
            code=50133,
            cause="the session is no longer valid after a recent password change or expiry",
            fix=f"{_LOGIN} with the new password",
        ),
        AadstsExplanation(
            code=50078,
            cause=(
                "the multi-factor authentication presented at login has expired under a "
                "Conditional Access sign-in frequency policy"
            ),
            fix=(
                f"{_LOGIN} and set sign_in_frequency on the identity so patwarden warns before "
                "it happens; consider excluding the rotator account from the policy"
            ),
        ),
        AadstsExplanation(
            code=50057,
            cause="the user account is disabled in Entra ID",
            fix=f"ask an Entra admin to enable the rotator account, then {_LOGIN}",
        ),
        AadstsExplanation(
            code=53000,
            cause=(
                "a Conditional Access policy requires a compliant (Intune-managed) device, and "
                "the machine signing in is not one"
            ),
            fix=(
                "exclude the dedicated rotator account from the device-compliance policy (a "
                "runner cannot be a compliant device) and protect it with MFA and a location "
                f"condition instead, then {_LOGIN}"
            ),
        ),
        AadstsExplanation(
            code=53001,
            cause=(
                "a Conditional Access policy requires a hybrid Entra joined device, and the "
                "machine signing in is not one"
            ),
            fix=(
                "exclude the dedicated rotator account from the device-join requirement, or "
                f"sign in from a hybrid-joined workstation; then {_LOGIN}"
            ),
        ),
        AadstsExplanation(
            code=530084,
            cause=(
                "a token protection (sign-in session binding) policy applies, and patwarden's "
                "sign-in cannot be bound to a device key"
            ),
            fix=(
                "exclude the rotator account (or the patwarden app) from the token protection "
                f"policy, then {_LOGIN}"
            ),
        ),
        AadstsExplanation(
            code=70043,
            cause=(
                "a Conditional Access sign-in frequency policy requires a fresh interactive sign-in"
            ),
            fix=(
                f"{_LOGIN} and set sign_in_frequency on the identity so patwarden warns before "
                "it happens"
            ),
        ),
        AadstsExplanation(
            code=50076,
            cause=(
                "multi-factor authentication is now required for this sign-in (Conditional "
                "Access or location)"
            ),
            fix=f"{_LOGIN} and complete the MFA prompt in the browser",
        ),
        AadstsExplanation(
            code=50079,
            cause="the user must register for multi-factor authentication",
            fix=f"sign in once at https://aka.ms/mfasetup as the rotator user, then {_LOGIN}",
        ),
        AadstsExplanation(
            code=53003,
            cause=(
                "access was blocked by a Conditional Access policy (a location outside the "
                "allowed networks, or a risk or app condition)"
            ),
            fix=(
                "run patwarden from a network the policy allows, or ask the Entra admin which "
                f"policy blocked it (sign-in logs) and exclude or satisfy it; then {_LOGIN}"
            ),
        ),
        AadstsExplanation(
            code=65001,
            cause="the user or an admin has not consented to the app's Azure DevOps permissions",
            fix=(
                "grant admin consent for vso.pats and vso.pats_manage on the app "
                f"registration, then {_LOGIN}"
            ),
        ),
        AadstsExplanation(
            code=7000215,
            cause=(
                "the client secret is invalid (often the secret's *id* was stored instead "
                "of its value)"
            ),
            fix="create a new client secret and store its value where client_secret points",
            needs_login=False,
        ),
        AadstsExplanation(
            code=7000222,
            cause="the client secret has expired",
            fix=(
                "create a new client secret on the app registration and store it where "
                "client_secret points"
            ),
            needs_login=False,
        ),
        AadstsExplanation(
            code=700016,
            cause="the application (client_id) was not found in the tenant",
            fix="check client_id and tenant_id against the app registration's Overview page",
            needs_login=False,
        ),
        AadstsExplanation(
            code=90002,
            cause="the tenant was not found",
            fix="check tenant_id (the directory's GUID or its onmicrosoft.com domain)",
            needs_login=False,
        ),
    )
    if explanation.code is not None
}


def error_codes(result: Mapping[str, Any]) -> tuple[int, ...]:
    """The AADSTS codes in an MSAL/Entra error response (``error_codes``, else the description)."""
    codes = result.get("error_codes")
    if isinstance(codes, list) and codes:
        return tuple(
            int(code) for code in codes if isinstance(code, int | str) and str(code).isdigit()
        )
    description = result.get("error_description")
    if isinstance(description, str):
        return tuple(int(code) for code in _CODE_IN_TEXT.findall(description))
    return ()


DEVICE_CODE_BLOCKED = AadstsExplanation(
    code=53003,
    cause=(
        "a Conditional Access policy blocks the device-code flow in this tenant "
        '("Authentication flows" condition)'
    ),
    fix=(
        f"sign in with the browser instead: {_BROWSER_LOGIN} on a workstation (add --export "
        "FILE to hand the sign-in over to a runner)"
    ),
    row="device-code-blocked",
)
DEVICE_CODE_SESSION_BLOCKED = AadstsExplanation(
    code=53003,
    cause=(
        "access was blocked by a Conditional Access policy; this sign-in was made with a device "
        "code, and a tenant that blocks the device-code flow also refuses to refresh such "
        "sign-ins (or a location or risk policy applies)"
    ),
    fix=(
        f"{_BROWSER_LOGIN}; if the browser sign-in is refused too, the block is a location or "
        "risk policy: check the user's sign-in logs"
    ),
    row="device-code-blocked",
)


def explain(result: Mapping[str, Any], *, context: str | None = None) -> AadstsExplanation:
    """Explain an Entra error response; unknown codes get a generic explanation naming the code.

    *context* says where the answer came from when a code means different things at different
    steps: :data:`DEVICE_CODE_REQUEST` (asking for a device code) or :data:`DEVICE_CODE_SESSION`
    (refreshing a sign-in made with a device code).
    """
    codes = error_codes(result)
    if 53003 in codes and context == DEVICE_CODE_REQUEST:
        return DEVICE_CODE_BLOCKED
    if 53003 in codes and context == DEVICE_CODE_SESSION:
        return DEVICE_CODE_SESSION_BLOCKED
    for code in codes:
        if code in KNOWN_CODES:
            return KNOWN_CODES[code]
    error = str(result.get("error") or "unknown_error")
    if error in TRANSIENT_ERRORS:
        return AadstsExplanation(
            code=codes[0] if codes else None,
            cause=f"Entra ID is temporarily unable to answer ({error})",
            fix="retry later; the sign-in itself is still valid",
            needs_login=False,
        )
    if codes:
        cause = f"Entra refused the silent sign-in with AADSTS{codes[0]} ({error})"
    else:
        cause = f"Entra refused the silent sign-in ({error})"
    return AadstsExplanation(
        code=codes[0] if codes else None,
        cause=cause,
        fix=f"{_LOGIN}; if that fails too, look the code up at https://login.microsoftonline.com/error",
    )
