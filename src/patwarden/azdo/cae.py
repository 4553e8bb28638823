"""Continuous access evaluation: read the claims challenge of an Azure DevOps 401.

A CAE-capable token can be refused before it expires (sessions revoked, password reset, location
change). Azure DevOps then answers 401 with ``WWW-Authenticate: Bearer …,
error="insufficient_claims", claims="<base64 JSON>"``. The transport passes the decoded claims to
the credential's ``get_token(claims=…)`` (MSAL's silent flow with ``claims_challenge``) and resends
the request once; if the sign-in cannot be refreshed silently, the credential's re-login error
stops the run.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re

import httpx

from patwarden.errors import AuthError

log = logging.getLogger(__name__)
_ERROR = re.compile(r'error\s*=\s*"insufficient_claims"', re.IGNORECASE)
_CLAIMS = re.compile(r'claims\s*=\s*"([A-Za-z0-9+/=_-]+)"', re.IGNORECASE)


def claims_challenge(response: httpx.Response) -> str | None:
    """The decoded claims (a JSON string) of a CAE challenge in *response*, or None."""
    if response.status_code != 401:
        return None
    for header in response.headers.get_list("www-authenticate"):
        match = _CLAIMS.search(header)
        if not _ERROR.search(header) or match is None:
            continue
        value = match.group(1)
        try:
            decoded = base64.urlsafe_b64decode(
                value.replace("+", "-").replace("/", "_") + "=" * (-len(value) % 4)
            ).decode("utf-8")
            json.loads(decoded)
        except (binascii.Error, ValueError):
            return None
        return decoded
    return None


def claims_to_retry(response: httpx.Response, sent: str | None, action: str) -> str | None:
    """The claims to resend the request with, or None when *response* is no CAE challenge.

    *sent* is what the request already carried: a second challenge is not retried again.

    Raises:
        AuthError: Azure DevOps challenged the request that already carried fresh claims.
    """
    challenge = claims_challenge(response)
    if challenge is None:
        return None
    if sent is not None:
        raise AuthError(
            f"Azure DevOps refused to {action} again after a fresh token was obtained for its "
            "continuous access evaluation challenge",
            hint="run `patwarden doctor`; if it persists, run `patwarden login` again",
        )
    log.warning("Azure DevOps sent a claims challenge to %s; retrying once", action)
    return challenge
