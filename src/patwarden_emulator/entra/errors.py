"""Entra ID error responses in the real shape (contract §4.4).

Handlers raise :class:`AadError`; :func:`error_response` renders it as the JSON body Entra sends:
``error``, ``error_description`` ("AADSTS<code>: <message>" + trace/correlation/timestamp lines),
``error_codes``, ``timestamp``, ``trace_id``, ``correlation_id``, ``error_uri`` and, for
Conditional Access challenges, ``suberror`` and ``claims``. Messages name clients and users,
never a secret.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

from starlette.requests import Request
from starlette.responses import JSONResponse

# The claims challenge a Conditional Access policy sends with AADSTS50076 (an opaque policy id).
MFA_CLAIMS_CHALLENGE = json.dumps(
    {
        "access_token": {
            "capolids": {"essential": True, "values": ["9f0d1a52-8c3e-4a5b-9b61-1c2f3e4d5a6b"]}
        }
    },
    separators=(",", ":"),
)

NO_CACHE_HEADERS = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}


class AadError(Exception):
    """An OAuth error the token or device-code endpoint answers with (HTTP 400 unless told)."""

    def __init__(
        self,
        code: int,
        error: str,
        message: str,
        *,
        status: int = 400,
        suberror: str | None = None,
        claims: str | None = None,
    ) -> None:
        super().__init__(f"AADSTS{code}: {message}")
        self.code = code
        self.error = error
        self.message = message
        self.status = status
        self.suberror = suberror
        self.claims = claims


def _timestamp(now: dt.datetime) -> str:
    return now.strftime("%Y-%m-%d %H:%M:%SZ")


def error_body(
    err: AadError, *, base_url: str, correlation_id: str | None = None
) -> dict[str, object]:
    """Return the JSON body Entra sends for *err*."""
    trace_id = str(uuid.uuid4())
    correlation = correlation_id or str(uuid.uuid4())
    stamp = _timestamp(dt.datetime.now(dt.UTC))
    body: dict[str, object] = {
        "error": err.error,
        "error_description": (
            f"AADSTS{err.code}: {err.message}\r\nTrace ID: {trace_id}\r\n"
            f"Correlation ID: {correlation}\r\nTimestamp: {stamp}"
        ),
        "error_codes": [err.code],
        "timestamp": stamp,
        "trace_id": trace_id,
        "correlation_id": correlation,
        "error_uri": f"{base_url}/error?code={err.code}",
    }
    if err.suberror is not None:
        body["suberror"] = err.suberror
    if err.claims is not None:
        body["claims"] = err.claims
    return body


def error_response(err: AadError, *, request: Request, base_url: str) -> JSONResponse:
    """Render *err* as Entra does, echoing the caller's ``client-request-id`` as correlation id."""
    correlation = request.headers.get("client-request-id")
    body = error_body(err, base_url=base_url, correlation_id=correlation)
    headers = dict(NO_CACHE_HEADERS, **{"x-ms-request-id": str(body["trace_id"])})
    if correlation:
        headers["client-request-id"] = correlation
    if err.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="login.microsoftonline.com"'
    return JSONResponse(body, status_code=err.status, headers=headers)


# Frequently raised errors ----------------------------------------------------------------------
def missing_parameter(name: str) -> AadError:
    """AADSTS900144: a required form field is absent."""
    return AadError(
        900144,
        "invalid_request",
        f"The request body must contain the following parameter: '{name}'.",
    )


def invalid_grant(code: int, message: str) -> AadError:
    """An ``invalid_grant`` error with the given AADSTS code."""
    return AadError(code, "invalid_grant", message)


def user_disabled(upn: str) -> AadError:
    """AADSTS50057: the user account is disabled."""
    return invalid_grant(
        50057,
        f"The user account is disabled. The account '{upn}' has been disabled by an administrator.",
    )


def user_not_found(upn: str, tenant_id: str) -> AadError:
    """AADSTS50034: the user does not exist in the tenant."""
    return invalid_grant(
        50034,
        f"The user account {upn} does not exist in the {tenant_id} directory. To sign into this "
        "application, the account must be added to the directory.",
    )


def mfa_required(resource: str, *, error: str) -> AadError:
    """AADSTS50076: multi-factor authentication is required (with the CA claims challenge)."""
    return AadError(
        50076,
        error,
        "Due to a configuration change made by your administrator, or because you moved to a new "
        f"location, you must use multi-factor authentication to access '{resource}'.",
        suberror="basic_action",
        claims=MFA_CLAIMS_CHALLENGE,
    )
