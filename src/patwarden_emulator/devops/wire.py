"""Wire details of the emulated Azure DevOps: VSS error envelopes, dates, routes, paging tokens.

Sources: contract §1.4 (date formats), §1.5 (continuation tokens), §1.8 (the VSS envelope and
``X-TFS-ServiceError``), §6 (203 sign-in page) and the real ``VssVersionNotSpecifiedException``
message.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from patwarden_emulator import clock

_FRAMEWORK = "Microsoft.TeamFoundation.Framework.Server"
_WEBAPI = "Microsoft.VisualStudio.Services.WebApi"

Handler = Callable[[Request], Awaitable[Response]]


class VssError(Exception):
    """An Azure DevOps error answered with the VSS JSON envelope."""

    def __init__(
        self,
        *,
        status: int,
        message: str,
        type_key: str,
        namespace: str = _FRAMEWORK,
        headers: dict[str, str] | None = None,
        sign_in: bool = False,
    ) -> None:
        super().__init__(message)
        self.sign_in = sign_in
        self.status = status
        self.message = message
        self.type_key = type_key
        self.namespace = namespace
        self.headers = headers or {}

    def response(self, request: Request) -> Response:
        """The HTTP response: the envelope, or the 203 sign-in page for an unsuppressed 401."""
        if self.sign_in and not redirect_suppressed(request):
            return sign_in_page(str(request.base_url).rstrip("/"))
        return vss_error_response(
            status=self.status,
            message=self.message,
            type_key=self.type_key,
            namespace=self.namespace,
            headers=self.headers,
        )


def vss_error_response(
    *,
    status: int,
    message: str,
    type_key: str,
    namespace: str = _FRAMEWORK,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """Return the VSS exception envelope (contract §1.8) with ``X-TFS-ServiceError``."""
    assembly = namespace.rsplit(".", 1)[0] if namespace == _WEBAPI else namespace
    body = {
        "$id": "1",
        "innerException": None,
        "message": message,
        "typeName": f"{namespace}.{type_key}, {assembly}",
        "typeKey": type_key,
        "errorCode": 0,
        "eventId": 3000,
    }
    all_headers = {"X-TFS-ServiceError": quote(message, safe=""), "ActivityId": str(uuid.uuid4())}
    all_headers.update(headers or {})
    return JSONResponse(body, status_code=status, headers=all_headers)


def bad_request(message: str, type_key: str = "ArgumentException") -> VssError:
    """A 400 VSS error."""
    return VssError(status=400, message=message, type_key=type_key)


def not_found(message: str, type_key: str) -> VssError:
    """A 404 VSS error."""
    return VssError(status=404, message=message, type_key=type_key)


def sign_in_page(base_url: str) -> HTMLResponse:
    """The 203 "Non-Authoritative Information" sign-in page served instead of a 401 (§6)."""
    html = (
        "<!DOCTYPE html><html><head><title>Azure DevOps Services | Sign In</title></head>"
        f'<body><a href="{base_url}/_signin?realm=dev.azure.com">Sign in</a></body></html>'
    )
    return HTMLResponse(html, status_code=203)


def redirect_suppressed(request: Request) -> bool:
    """True when the caller asked for 401s instead of sign-in pages (``X-TFS-FedAuthRedirect``)."""
    return request.headers.get("x-tfs-fedauthredirect", "").lower() == "suppress"


# api-version ---------------------------------------------------------------------------------
_ACCEPT_VERSION = re.compile(r"api-version\s*=\s*([^;,\s]+)", re.IGNORECASE)


def api_version(request: Request) -> str | None:
    """The api-version from the query string or the Accept header."""
    for key, value in request.query_params.multi_items():
        if key.lower() == "api-version":
            return value
    found = _ACCEPT_VERSION.search(request.headers.get("accept", ""))
    return found.group(1) if found else None


def require_api_version(request: Request, *, preview: bool) -> None:
    """Raise the real 400 errors for a missing api-version or a missing ``-preview`` flag.

    Raises:
        VssError: no api-version, or a preview-only resource called without ``-preview``.
    """
    version = api_version(request)
    if not version:
        raise VssError(
            status=400,
            message=(
                f'No api-version was supplied for the "{request.method}" request. The version '
                'must be supplied either as part of the Accept header (e.g. "application/json; '
                'api-version=1.0") or as a query parameter (e.g. "?api-version=1.0").'
            ),
            type_key="VssVersionNotSpecifiedException",
            namespace=_WEBAPI,
        )
    if preview and "-preview" not in version.lower():
        raise VssError(
            status=400,
            message=(
                f'The requested version "{version}" of the resource is under preview. The '
                "-preview flag must be supplied in the api-version for such requests. For "
                f'example: "{version}-preview"'
            ),
            type_key="VssInvalidPreviewVersionException",
            namespace=_WEBAPI,
        )


async def json_body(request: Request) -> Any:
    """Parse the JSON request body.

    Raises:
        VssError: 400 TF400898 for a body that is not JSON (contract §1.8).
    """
    raw = await request.body()
    try:
        return json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        raise VssError(
            status=400,
            message=(
                "TF400898: An Internal Error Occurred. Activity Id: "
                f"{uuid.uuid4()}. Unexpected character encountered while parsing value."
            ),
            type_key="JsonReaderException",
            namespace="Newtonsoft.Json",
        ) from None


# dates ---------------------------------------------------------------------------------------
def utcnow() -> dt.datetime:
    """The current time of the emulated Azure DevOps (UTC, aware; see :mod:`..clock`)."""
    return clock.now()


def parse_datetime(value: object) -> dt.datetime | None:
    """Parse an ISO-8601 date-time (naive means UTC); None when unparsable."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    # Python 3.11 accepts at most 6 fractional digits only in some forms: trim .NET's 7th.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def sql_datetime_round(value: dt.datetime) -> dt.datetime:
    """Round like SQL ``datetime`` (1/300 s) then to whole milliseconds, as .NET reads it back."""
    ticks = round(value.microsecond * 300 / 1_000_000)
    millis = int(ticks / 0.3 + 0.5)
    base = value.replace(microsecond=0)
    return base + dt.timedelta(milliseconds=millis)


def format_trimmed(value: dt.datetime) -> str:
    """``2026-07-01T00:00:23.32Z``: .NET round-trip format with trailing zeros trimmed."""
    text = value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{value.microsecond:06d}".rstrip("0")
    return f"{text}.{fraction}Z" if fraction else f"{text}Z"


def format_seven(value: dt.datetime) -> str:
    """``2026-06-01T09:12:44.1033330Z``: always seven fractional digits (validFrom)."""
    text = value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{value.microsecond:06d}0Z"


def from_timestamp(value: float) -> dt.datetime:
    """An aware UTC datetime from a Unix timestamp."""
    return dt.datetime.fromtimestamp(value, dt.UTC)


# continuation tokens -------------------------------------------------------------------------
_PAT_TOKEN_SUFFIX = "-patapitoken"  # noqa: S105 - a paging marker, not a secret


def pat_continuation(next_row: int) -> str:
    """``base64("{row}-patapitoken")``, the PAT list continuation token (contract §1.5)."""
    return base64.b64encode(f"{next_row}{_PAT_TOKEN_SUFFIX}".encode()).decode()


def parse_pat_continuation(token: str) -> int | None:
    """The 1-based start row encoded in a PAT list continuation token; None when invalid."""
    try:
        text = base64.b64decode(token, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    row, _, suffix = text.partition("-")
    if f"-{suffix}" != _PAT_TOKEN_SUFFIX or not row.isdigit() or int(row) < 1:
        return None
    return int(row)


def int_param(request: Request, name: str, *, default: int) -> int:
    """An integer query parameter (case-insensitive name).

    Raises:
        VssError: 400 when the value is not an integer.
    """
    for key, value in request.query_params.multi_items():
        if key.lower() == name.lower():
            try:
                return int(value)
            except ValueError:
                raise bad_request(
                    f"The value '{value}' of query parameter '{name}' is not a valid integer."
                ) from None
    return default


def query_param(request: Request, name: str) -> str | None:
    """A query parameter looked up case-insensitively (Azure DevOps ignores the case)."""
    for key, value in request.query_params.multi_items():
        if key.lower() == name.lower():
            return value
    return None


def bool_param(request: Request, name: str, *, default: bool) -> bool:
    """A boolean query parameter ("true"/"false", any case)."""
    value = query_param(request, name)
    if value is None:
        return default
    return value.strip().lower() == "true"


# routes --------------------------------------------------------------------------------------
class CaseInsensitiveRoute(Route):
    """A Starlette route whose path matches regardless of case (Azure DevOps paths do)."""

    def __init__(self, path: str, endpoint: Handler, *, methods: list[str]) -> None:
        super().__init__(path, endpoint, methods=methods)
        self.path_regex = re.compile(self.path_regex.pattern, re.IGNORECASE)


def guarded(handler: Handler) -> Handler:
    """Wrap a handler so a raised :class:`VssError` becomes its envelope response."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except VssError as err:
            return err.response(request)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint
