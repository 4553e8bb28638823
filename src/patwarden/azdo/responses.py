"""Turn Azure DevOps HTTP responses into JSON or into actionable errors.

Azure DevOps wraps failures in the VSS exception envelope ``{"message", "typeKey", …}`` (contract
§1.8) and, when a credential is refused without redirect suppression, answers 203 or 302 with an
HTML sign-in page (contract §1.8, §6). None of the messages built here contain a header or body
beyond the sanitized server message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from patwarden.azdo.errors import (
    AzdoAccessDenied,
    AzdoBadRequest,
    AzdoNotFound,
    AzdoRateLimited,
    AzdoRequestError,
    AzdoServerError,
    AzdoUnexpectedResponse,
    EntraTokenRequired,
    ServicePrincipalNotAllowed,
    sanitize_server_text,
)
from patwarden.errors import PatwardenError

_PAT_DOCS = "https://learn.microsoft.com/en-us/azure/devops/organizations/accounts/manage-personal-access-tokens-via-api"
_SP_DOCS = "https://learn.microsoft.com/en-us/azure/devops/integrate/get-started/authentication/service-principal-managed-identity"
_LOGIN_HINT = (
    "Run `patwarden doctor`; for a user identity whose sign-in expired run `patwarden login`; "
    "check that the identity is a member of the organization."
)


@dataclass(frozen=True)
class VssError:
    """The useful part of a VSS exception envelope."""

    message: str | None
    type_key: str | None


def vss_error(response: httpx.Response) -> VssError | None:
    """Return the VSS error envelope of *response* (JSON body or ``X-TFS-ServiceError``), if any."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict) and ("typeKey" in body or "message" in body):
        message, type_key = body.get("message"), body.get("typeKey")
        return VssError(
            message=message if isinstance(message, str) else None,
            type_key=type_key if isinstance(type_key, str) else None,
        )
    header = response.headers.get("x-tfs-serviceerror")
    return VssError(message=unquote(header), type_key=None) if header else None


def _where(url: str | httpx.URL) -> str:
    """Scheme, host and path of a URL: enough to recognise it, without its query string."""
    parts = urlsplit(str(url))
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def is_html(response: httpx.Response) -> bool:
    """Return True if *response* carries an HTML page (a sign-in page where JSON was expected)."""
    if "html" in response.headers.get("content-type", "").lower():
        return True
    return response.content.lstrip()[:1] == b"<"


def sign_in_problem(response: httpx.Response) -> str | None:
    """Describe how *response* is a sign-in answer (203, redirect or HTML), or return None."""
    if response.is_redirect:
        location = response.headers.get("location", "")
        kind = "a sign-in page" if "signin" in location.lower() else "another page"
        return f"HTTP {response.status_code}, a redirect to {kind} ({_where(location)})"
    if response.status_code == 203:
        return "HTTP 203 with a sign-in page"
    if response.is_success and is_html(response):
        return f"HTTP {response.status_code} with an HTML page"
    return None


def _path(response: httpx.Response) -> str:
    try:
        return f"{response.request.method} {response.request.url.path}"
    except RuntimeError:  # a Response built without a request
        return "the request"


def _invalid_access(status: int, env: VssError, *, action: str, detail: str) -> AzdoAccessDenied:
    message = env.message or ""
    if "service principals are not allowed" in message.lower():
        return ServicePrincipalNotAllowed(
            f"Azure DevOps refused to {action}: the PAT Lifecycle API accepts only a user's "
            "delegated Entra token, and this request was made as a service principal or managed "
            f"identity (HTTP {status}, InvalidAccessException).",
            status=status,
            type_key=env.type_key,
            hint="Make the rotator identity a user (kind: user) and run `patwarden login "
            "--identity rotator` once (device code; MFA is fine). Service principals can still "
            "write the sinks.",
            docs=_SP_DOCS,
        )
    if "requested operation is not allowed" in message.lower():
        return EntraTokenRequired(
            f"Azure DevOps refused to {action}: the request was authenticated with a PAT or "
            "Basic credential, but this API accepts only a Microsoft Entra access token of a "
            f"user (HTTP {status}, InvalidAccessException).",
            status=status,
            type_key=env.type_key,
            hint="Configure the rotator as a user identity and run `patwarden login --identity "
            "rotator`; a PAT cannot be used to manage PATs.",
            docs=_PAT_DOCS,
        )
    return AzdoAccessDenied(
        f"Azure DevOps refused to {action} (HTTP {status}, InvalidAccessException).{detail}",
        status=status,
        type_key=env.type_key,
        hint=_LOGIN_HINT,
    )


def error_for_response(
    response: httpx.Response, *, action: str, attempts: int = 1
) -> PatwardenError:
    """Return the error to raise for an unsuccessful *response* to the request doing *action*.

    *action* completes "refused to …" (e.g. "list PATs in organization 'contoso'").
    """
    status = response.status_code
    env = vss_error(response)
    detail = f" Server said: {sanitize_server_text(env.message)}" if env and env.message else ""
    type_key = env.type_key if env else None
    if env and type_key == "InvalidAccessException" and status in (401, 403):
        return _invalid_access(status, env, action=action, detail=detail)
    if (sign_in := sign_in_problem(response)) is not None:
        return AzdoAccessDenied(
            f"Azure DevOps answered {sign_in} instead of JSON when asked to {action}: the "
            "credential was not accepted.",
            status=status,
            hint=_LOGIN_HINT,
        )
    tried = f" after {attempts} attempts" if attempts > 1 else ""
    if status == 401:
        return AzdoAccessDenied(
            f"Azure DevOps rejected the credential used to {action} (HTTP 401): the token is "
            f"expired, for another tenant, or its user is not in the organization.{detail}",
            status=status,
            type_key=type_key,
            hint=_LOGIN_HINT,
        )
    if status == 403:
        return AzdoAccessDenied(
            f"Azure DevOps denied permission to {action} (HTTP 403): the identity is signed in "
            f"but lacks the permission or token scope this needs.{detail}",
            status=status,
            type_key=type_key,
            hint="Grant the identity the needed role (e.g. Administrator on the variable group or "
            "service connection; Project Collection Administrator for Token Admin) and scope.",
        )
    if status == 400 and "TF400898" in (env.message if env and env.message else ""):
        return AzdoBadRequest(
            f"Azure DevOps could not read the request to {action} (HTTP 400, TF400898: the body "
            "is malformed).",
            status=status,
            type_key=type_key,
            hint="This is a patwarden bug; please report it with this message.",
        )
    if status == 400:
        return AzdoBadRequest(
            f"Azure DevOps rejected the request to {action} as invalid (HTTP 400).{detail}",
            status=status,
            type_key=type_key,
            hint="Check the names, ids and values given in the configuration.",
        )
    if status == 404:
        return AzdoNotFound(
            f"Azure DevOps found nothing at {_path(response)} when asked to {action} "
            f"(HTTP 404).{detail}",
            status=status,
            type_key=type_key,
            hint="Check the organization, project and id in the configuration, and the base "
            "URLs (azure_devops_url, vssps_url).",
        )
    if status == 429:
        return AzdoRateLimited(
            f"Azure DevOps kept rate-limiting the request to {action}{tried} (HTTP 429).{detail}",
            hint="Wait a few minutes and run again; spread scheduled runs of this identity.",
        )
    if status >= 500:
        return AzdoServerError(
            f"Azure DevOps failed while asked to {action}{tried} (HTTP {status}).{detail}",
            status=status,
            type_key=type_key,
            hint="Retry later; if it persists, check https://status.dev.azure.com.",
        )
    return AzdoRequestError(
        f"Azure DevOps answered HTTP {status} when asked to {action}.{detail}",
        status=status,
        type_key=type_key,
        hint="Run with --debug and report this if it persists.",
    )


def json_body(response: httpx.Response, *, action: str) -> Any:
    """Return the JSON body of a successful *response*.

    Raises:
        AzdoAccessDenied: the response is a sign-in page rather than JSON.
        AzdoUnexpectedResponse: the body is not JSON.
    """
    if sign_in_problem(response) is not None:
        raise error_for_response(response, action=action)
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        raise AzdoUnexpectedResponse(
            f"Azure DevOps answered HTTP {response.status_code} with a body that is not JSON "
            f"when asked to {action}.",
            status=response.status_code,
            hint="Check that the base URLs point at Azure DevOps (or the emulator).",
        ) from None


def unexpected(what: str, *, action: str) -> AzdoUnexpectedResponse:
    """Return an error for a JSON answer that lacks or mistypes *what*."""
    return AzdoUnexpectedResponse(
        f"Azure DevOps answered an unexpected shape when asked to {action}: {what}.",
        hint="Upgrade patwarden; if it persists, report it with this message.",
    )
