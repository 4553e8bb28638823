"""Error documents in each emulated service's own shape, for injected faults and throttling.

Azure DevOps answers with the VSS exception envelope (contract §1.8), Key Vault with
``{"error": {"code", "message"}}`` plus ``x-ms-error-code`` (§8) and Entra ID with an OAuth
error document (§4.4). Which one a path gets is decided by :func:`service_of`.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from typing import Any, Literal

Service = Literal["devops", "keyvault", "entra"]

_KEY_VAULT_CODES = {
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}
_REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def service_of(path: str) -> Service:
    """Which emulated service serves *path*."""
    if path.startswith(("/devops/", "/vssps/")):
        return "devops"
    if path.startswith(("/secrets", "/deletedsecrets")):
        return "keyvault"
    return "entra"


def vss_error(*, message: str, type_key: str, status: int) -> dict[str, Any]:
    """The Azure DevOps (VSS) exception envelope."""
    namespace = "Microsoft.TeamFoundation.Framework.Server"
    return {
        "$id": "1",
        "innerException": None,
        "message": message,
        "typeName": f"{namespace}.{type_key}, {namespace}",
        "typeKey": type_key,
        "errorCode": 0,
        "eventId": 3000 if status < 500 else 0,
    }


def _entra_error(*, error: str, description: str, code: int) -> dict[str, Any]:
    return {
        "error": error,
        "error_description": description,
        "error_codes": [code],
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
        "trace_id": str(uuid.uuid4()),
        "correlation_id": str(uuid.uuid4()),
    }


Headers = list[tuple[bytes, bytes]]


def _encode(document: dict[str, Any], headers: dict[str, str]) -> tuple[Headers, bytes]:
    body = json.dumps(document).encode()
    raw = [(b"content-type", b"application/json; charset=utf-8")]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    return raw, body


def status_error(*, path: str, status: int) -> tuple[Headers, bytes]:
    """Headers and body of an injected server error (*status* is 4xx or 5xx)."""
    reason = _REASONS.get(status, "Error")
    text = f"{reason} (injected by the emulator's fault injection)."
    service = service_of(path)
    if service == "devops":
        document = vss_error(
            message=f"TF400898: An Internal Error Occurred. {text}",
            type_key="ServiceUnavailableException" if status == 503 else "VssServiceException",
            status=status,
        )
        return _encode(document, {"x-tfs-serviceerror": text.replace(" ", "%20")})
    if service == "keyvault":
        code = _KEY_VAULT_CODES.get(
            status, "InternalServerError" if status >= 500 else "BadRequest"
        )
        return _encode({"error": {"code": code, "message": text}}, {"x-ms-error-code": code})
    error = "temporarily_unavailable" if status in (503, 504) else "server_error"
    return _encode(_entra_error(error=error, description=f"AADSTS90033: {text}", code=90033), {})


def throttle_error(
    *, path: str, retry_after: float, limit: int, resource: str = "Core"
) -> tuple[Headers, bytes]:
    """Headers and body of a 429 in the service's shape, with ``Retry-After``."""
    seconds = max(1, math.ceil(retry_after))
    headers = {"retry-after": str(seconds)}
    service = service_of(path)
    if service == "devops":
        headers.update(
            {
                "x-ratelimit-resource": resource,
                "x-ratelimit-limit": str(limit),
                "x-ratelimit-remaining": "0",
                # On the same clock as the answers' Date header (see ratelimit.py).
                "x-ratelimit-reset": str(math.ceil(time.time() + seconds)),
            }
        )
        document = vss_error(
            message=(
                "TF400733: The request has been canceled: Request was blocked due to exceeding "
                f"usage of resource '{resource}' in namespace 'User'."
            ),
            type_key="RequestBlockedException",
            status=429,
        )
        return _encode(document, headers)
    if service == "keyvault":
        headers["x-ms-error-code"] = "Throttled"
        document = {
            "error": {
                "code": "Throttled",
                "message": "Request was not processed because too many requests were received. "
                "Reason: VaultRequestTypeLimitReached",
            }
        }
        return _encode(document, headers)
    description = f"AADSTS90055: Too many requests; retry after {seconds} seconds."
    document = _entra_error(error="temporarily_unavailable", description=description, code=90055)
    return _encode(document, headers)
