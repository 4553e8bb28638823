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

    @property
    def anchor(self) -> str:
        """Link into the troubleshooting table of docs/identities.md."""
        if self.code is not None and self.code in KNOWN_CODES:
            return f"{DOCS}/identities.md#aadsts{self.code}"
        return TROUBLESHOOTING


_LOGIN = "run `patwarden login --identity {identity}` again"

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
            cause="the grant was revoked (password reset, or an admin revoked the user's sessions)",
            fix=f"{_LOGIN}; if it was not planned, find out who revoked the sessions",
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
            cause="access was blocked by a Conditional Access policy (location, device or risk)",
            fix=(
                "ask the Entra admin which policy blocked it (sign-in logs), exclude or "
                f"satisfy it, then {_LOGIN}"
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


def explain(result: Mapping[str, Any]) -> AadstsExplanation:
    """Explain an Entra error response; unknown codes get a generic explanation naming the code."""
    codes = error_codes(result)
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
