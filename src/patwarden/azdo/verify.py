"""Check that a PAT works, with one cheap Basic-auth call inside its scopes (contract §6).

Which endpoint: a PAT that holds ``vso.project*``, ``vso.profile*`` or full access
(``app_token``) is checked with ``GET {org}/_apis/projects?$top=1`` — a documented API inside its
scopes, so success proves both the credential and a scope. Any other PAT is checked with
``GET {org}/_apis/connectionData``, which every valid PAT of the organization may call whatever its
scopes (what Microsoft's own clients use to validate credentials). It proves the PAT is alive and
accepted by the organization; it cannot prove a narrow scope such as ``vso.packaging``, which
lives on other hosts.

Requests carry ``Accept: application/json`` and ``X-TFS-FedAuthRedirect: Suppress`` (set by the
transport). A 401, a 203, a redirect (to ``_signin`` or elsewhere) or an HTML page where JSON was
expected all mean "invalid", returned as a result rather than raised.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from patwarden.azdo import validation
from patwarden.azdo.constants import CONNECTION_DATA_API_VERSION, CORE_API_VERSION
from patwarden.azdo.errors import sanitize_server_text
from patwarden.azdo.responses import error_for_response, is_html, sign_in_problem, vss_error
from patwarden.azdo.transport import AzdoTransport, BasicPat, ServiceUrls
from patwarden.secret import Secret

_PROJECT_SCOPES = frozenset(
    {
        "app_token",
        "vso.project",
        "vso.project_write",
        "vso.project_manage",
        "vso.profile",
        "vso.profile_write",
    }
)


class VerifyFailure(enum.StrEnum):
    """Why a PAT was judged invalid."""

    UNAUTHORIZED = "unauthorized"  # 401: unknown, revoked or wrong PAT
    EXPIRED = "expired"  # 401 saying the PAT has expired
    FORBIDDEN = "forbidden"  # 403: accepted, but not allowed to call the probe
    SIGN_IN_PAGE = "sign_in_page"  # 203 or an HTML page instead of JSON
    REDIRECT = "redirect"  # 30x, usually to a _signin page


@dataclass(frozen=True, kw_only=True)
class Probe:
    """The request used to verify a PAT."""

    path: str
    api_version: str
    params: tuple[tuple[str, str], ...] = ()


CONNECTION_DATA = Probe(path="_apis/connectionData", api_version=CONNECTION_DATA_API_VERSION)
PROJECTS = Probe(path="_apis/projects", api_version=CORE_API_VERSION, params=(("$top", "1"),))


def probe_for(scopes: Sequence[str]) -> Probe:
    """Return the cheapest request that a PAT with *scopes* may make (see module docstring)."""
    return PROJECTS if _PROJECT_SCOPES.intersection(scopes) else CONNECTION_DATA


@dataclass(frozen=True, kw_only=True)
class PatVerification:
    """The verdict on a PAT: ``valid``, and if not, ``failure`` and a ``detail`` to show."""

    valid: bool
    organization: str
    probe: str
    status: int
    failure: VerifyFailure | None = None
    detail: str = ""


def _verdict(response: httpx.Response) -> tuple[VerifyFailure | None, str]:
    status = response.status_code
    if (sign_in := sign_in_problem(response)) is not None:
        kind = VerifyFailure.REDIRECT if response.is_redirect else VerifyFailure.SIGN_IN_PAGE
        return kind, f"Azure DevOps answered {sign_in}"
    env = vss_error(response)
    said = sanitize_server_text(env.message) if env and env.message else ""
    if status == 401:
        if "expired" in said.lower():
            return VerifyFailure.EXPIRED, said
        return VerifyFailure.UNAUTHORIZED, said or "HTTP 401: the PAT was not accepted"
    if status == 403:
        return VerifyFailure.FORBIDDEN, said or "HTTP 403: the PAT may not call this API"
    return None, ""


class PatVerifier:
    """Runs :func:`probe_for`'s request with a PAT over Basic auth (thread-safe)."""

    def __init__(self, *, transport: AzdoTransport, urls: ServiceUrls) -> None:
        self._transport = transport
        self._urls = urls

    def verify_pat(self, *, org: str, pat: Secret, scopes: Sequence[str]) -> PatVerification:
        """Return whether *pat* works in *org*; an invalid PAT is a result, not an exception.

        Raises:
            ConfigError: a bad organization name.
            AzdoNotFound: the organization does not exist (404).
            AzdoServerError | AzdoRateLimited | AzdoConnectionError: no verdict could be had.
        """
        probe = probe_for(scopes)
        url = f"{self._urls.azure_devops_url}/{validation.organization(org)}/{probe.path}"
        action = f"verify a PAT in organization {org!r}"
        response = self._transport.send(
            "GET",
            url,
            action=action,
            api_version=probe.api_version,
            auth=BasicPat(pat),
            params=dict(probe.params),
            check=False,
        )
        failure, detail = _verdict(response)
        if failure is None and not response.is_success:
            raise error_for_response(response, action=action)
        if failure is None and (is_html(response) or not _is_json(response)):
            failure, detail = VerifyFailure.SIGN_IN_PAGE, "the answer was not JSON"
        return PatVerification(
            valid=failure is None,
            organization=org,
            probe=probe.path,
            status=response.status_code,
            failure=failure,
            detail=detail,
        )


def _is_json(response: httpx.Response) -> bool:
    try:
        response.json()
    except (ValueError, UnicodeDecodeError):
        return False
    return True
