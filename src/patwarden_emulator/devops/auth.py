"""Who is calling the emulated Azure DevOps: Entra bearer tokens and PATs over Basic auth.

Sources: contract §1.8 and §2 (who may call the PAT API and the exact refusals), §6 (PAT failure
shapes: 401 JSON, ``WWW-Authenticate: Basic``, 203 sign-in page), §7.1 (scope inheritance) and
§7.3 (the org "Restrict PAT creation" policy also blocks global PATs in the org); continuous access
evaluation (a revoked session's CAE-capable token gets a claims challenge).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass
from typing import Literal

from starlette.requests import Request

from patwarden.domain.scopes import AZURE_DEVOPS_RESOURCE
from patwarden_emulator.auth import Principal, authorization, bearer_principal, note_identity
from patwarden_emulator.context import Emulator
from patwarden_emulator.devops.scopes import IMPERSONATION, scope_allows
from patwarden_emulator.devops.state import DevopsState, Organization, PatRecord, now
from patwarden_emulator.devops.wire import VssError
from patwarden_emulator.directory import User
from patwarden_emulator.entra.state import entra_state

# What Azure DevOps accepts as the audience of an Entra access token (app id and resource URI).
AUDIENCES = (AZURE_DEVOPS_RESOURCE, "https://app.vssps.visualstudio.com")
_TOKEN_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class Caller:
    """An authenticated caller of the emulated Azure DevOps."""

    kind: Literal["user", "app"]
    method: Literal["bearer", "pat"]
    object_id: str
    name: str
    scopes: frozenset[str]
    user: User | None = None
    pat: PatRecord | None = None

    @property
    def is_service_principal(self) -> bool:
        return self.kind == "app"


def _www_authenticate(emu: Emulator, request: Request) -> dict[str, str]:
    realm = str(request.base_url).rstrip("/") + "/"
    return {
        "WWW-Authenticate": (
            f"Bearer authorization_uri={emu.authority_host}/{emu.tenant_id}, "
            f'Basic realm="{realm}", TFS-Federated'
        )
    }


def unauthorized(emu: Emulator, request: Request, *, user_id: str = "") -> VssError:
    """401 TF400813 (or the 203 sign-in page when redirects are not suppressed)."""
    return VssError(
        status=401,
        message=f"TF400813: The user '{user_id}' is not authorized to access this resource.",
        type_key="UnauthorizedRequestException",
        headers=_www_authenticate(emu, request),
        sign_in=True,
    )


def invalid_access(message: str) -> VssError:
    """The ``InvalidAccessException`` envelope (HTTP 401, contract open question 1)."""
    return VssError(status=401, message=message, type_key="InvalidAccessException")


def _basic_pat(request: Request) -> str | None:
    parsed = authorization(request)
    if parsed is None or parsed[0] != "basic":
        return None
    try:
        decoded = base64.b64decode(parsed[1], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ""
    _, colon, password = decoded.partition(":")
    return password if colon else decoded


def _active_user(state: DevopsState, oid: str) -> User | None:
    user = state.emu.directory.user_by_oid(oid)
    if user is None or not user.enabled or user.removed:
        return None
    return user


def _pat_caller(state: DevopsState, request: Request, org: Organization, value: str) -> Caller:
    emu = state.emu
    record = state.pat_by_value(value) if value else None
    if record is None or record.revoked:
        raise unauthorized(emu, request)
    owner = _active_user(state, record.user_oid)
    if owner is None:
        # Disabling or removing a user revokes their PATs (contract §3.1 behaviour notes).
        raise unauthorized(emu, request)
    note_identity(request, owner.upn)
    if record.is_expired(now()):
        raise VssError(
            status=401,
            message="Access Denied: The Personal Access Token used has expired.",
            type_key="AccessCheckException",
            headers=_www_authenticate(emu, request),
            sign_in=True,
        )
    if record.target_org is not None and record.target_org != org.id:
        raise unauthorized(emu, request, user_id=owner.oid)
    policies = state.policies
    if record.is_global and policies.disable_pat_creation and not policies.is_exempt(owner.upn):
        raise VssError(
            status=401,
            message=(
                f"Access Denied: The organization {org.name} restricts personal access token "
                "use: global personal access tokens are not allowed here."
            ),
            type_key="AccessCheckException",
        )
    return Caller(
        kind="user",
        method="pat",
        object_id=owner.oid,
        name=owner.upn,
        scopes=frozenset(record.scope.split()),
        user=owner,
        pat=record,
    )


def _expiry(token: str) -> float:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return float(claims.get("exp", 0))


def _verified_bearer(state: DevopsState, request: Request) -> Principal | None:
    """The principal of the request's bearer token, verifying each distinct token only once.

    Signature and claims checks dominate a request's cost, so verified tokens are remembered
    until they expire (the token string is the key; nothing is logged).
    """
    parsed = authorization(request)
    if parsed is None or parsed[0] != "bearer":
        return None
    cache = state.verified_tokens
    cached = cache.get(parsed[1])
    if cached is not None and cached[1] > time.time():
        note_identity(request, cached[0].name)
        return cached[0]
    for audience in AUDIENCES:
        principal = bearer_principal(state.emu, request, audience=audience)
        if principal is not None:
            if len(cache) >= _TOKEN_CACHE_SIZE:
                cache.clear()
            cache[parsed[1]] = (principal, _expiry(parsed[1]))
            return principal
    return None


def _check_continuous_access(state: DevopsState, request: Request, user: User) -> None:
    """CAE: a CAE-capable token (``xms_cc: CP1``) issued before the user's sessions were revoked
    (or a CAE event) gets 401 with a claims challenge, though it has not expired yet.

    Raises:
        VssError: 401 with ``WWW-Authenticate: Bearer … error="insufficient_claims", claims=…``.
    """
    parsed = authorization(request)
    if parsed is None:
        return
    payload = parsed[1].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    if "CP1" not in (claims.get("xms_cc") or []):
        return  # not CAE-capable: the token keeps working until it expires, like Azure DevOps
    valid_from = entra_state(state.emu).sessions.tokens_valid_from(user.oid)
    if valid_from is None or int(claims.get("iat", 0)) >= int(valid_from):
        return
    nbf = {"access_token": {"nbf": {"essential": True, "value": str(int(valid_from))}}}
    challenge = base64.b64encode(json.dumps(nbf, separators=(",", ":")).encode()).decode()
    emu = state.emu
    raise VssError(
        status=401,
        message=(
            f"TF400813: The user '{user.oid}' is not authorized to access this resource. The "
            "access token was revoked by continuous access evaluation."
        ),
        type_key="UnauthorizedRequestException",
        headers={
            "WWW-Authenticate": (
                f'Bearer authorization_uri="{emu.authority_host}/{emu.tenant_id}/oauth2/'
                f'authorize", error="insufficient_claims", claims="{challenge}"'
            )
        },
    )


def authenticate(state: DevopsState, request: Request, org: Organization) -> Caller:
    """Resolve the caller from a Bearer (Entra) or Basic (PAT) ``Authorization`` header.

    Raises:
        VssError: missing/invalid credentials, an expired, revoked or foreign-org PAT.
    """
    emu = state.emu
    pat_value = _basic_pat(request)
    if pat_value is not None:
        return _pat_caller(state, request, org, pat_value)
    principal = _verified_bearer(state, request)
    if principal is None or principal.tenant_id != emu.tenant_id:
        raise unauthorized(emu, request)
    if principal.is_service_principal:
        return Caller(
            kind="app",
            method="bearer",
            object_id=principal.object_id,
            name=principal.name,
            scopes=principal.roles,
        )
    user = _active_user(state, principal.object_id)
    if user is None:
        raise unauthorized(emu, request)
    _check_continuous_access(state, request, user)
    return Caller(
        kind="user",
        method="bearer",
        object_id=user.oid,
        name=user.upn,
        scopes=principal.scopes,
        user=user,
    )


def require_scope(caller: Caller, *needed: str) -> None:
    """Allow the caller if any of *needed* is granted (service principals pass: no scopes).

    Raises:
        VssError: 401 TF400813 naming the caller when no needed scope is granted.
    """
    if caller.is_service_principal:
        return
    granted = caller.scopes
    if caller.method == "bearer" and IMPERSONATION in granted:
        return
    if any(scope_allows(granted, scope) for scope in needed):
        return
    raise VssError(
        status=401,
        message=(
            f"TF400813: The user '{caller.object_id}' is not authorized to access this resource."
        ),
        type_key="UnauthorizedRequestException",
    )


def pat_api_caller(
    state: DevopsState, request: Request, org: Organization, *, manage: bool
) -> Caller:
    """The caller of the PAT Lifecycle API: a user's Entra token with ``vso.pats[_manage]``.

    Raises:
        VssError: PAT/Basic callers ("The requested operation is not allowed."), service
            principals ("Service principals are not allowed to perform this action."), missing
            scope, or no valid credentials.
    """
    caller = authenticate(state, request, org)
    if caller.method == "pat":
        raise invalid_access("The requested operation is not allowed.")
    if caller.is_service_principal:
        raise invalid_access("Service principals are not allowed to perform this action.")
    needed = _missing_pat_api_scope(state.policies.pat_api_scopes, caller.scopes, manage=manage)
    if needed is not None and IMPERSONATION not in caller.scopes:
        raise VssError(
            status=401,
            message=(
                f"TF400813: The user '{caller.object_id}' is not authorized to access this "
                f"resource. The access token lacks the scope '{needed}'."
            ),
            type_key="UnauthorizedRequestException",
        )
    return caller


def _missing_pat_api_scope(mode: str, granted: frozenset[str], *, manage: bool) -> str | None:
    """The scope a PAT API call lacks under the ``pat_api_scopes`` policy, or None.

    ``per_operation`` (default, the 7.2 spec's security per operation): reads need ``vso.pats``,
    writes ``vso.pats_manage``. ``manage_implies_read``: ``vso.pats_manage`` reads too.
    ``both_required``: every call needs both (what a third-party probe saw).
    """
    if mode == "both_required":
        missing = [s for s in ("vso.pats", "vso.pats_manage") if s not in granted]
        return " ".join(missing) or None
    if manage:
        return None if "vso.pats_manage" in granted else "vso.pats_manage"
    if "vso.pats" in granted or (mode == "manage_implies_read" and "vso.pats_manage" in granted):
        return None
    return "vso.pats"


def organization_of(state: DevopsState, request: Request) -> Organization:
    """The organization named in the path.

    Raises:
        VssError: 404 for an organization that does not exist.
    """
    name = str(request.path_params.get("org", ""))
    org = state.organization(name)
    if org is None:
        raise VssError(
            status=404,
            message=f"The organization '{name}' does not exist or you do not have access to it.",
            type_key="HostDoesNotExistException",
        )
    return org
