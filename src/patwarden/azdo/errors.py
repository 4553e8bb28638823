"""Errors the Azure DevOps client raises, and the mapping of every ``patTokenError`` value.

Business errors of the PAT Lifecycle API arrive as HTTP 200 with ``patTokenError`` set (contract
§1.6, §1.7; open question 4). Each of the 37 documented values maps to one of a few classes below,
with a message that says what to change. Values the spec adds later map to :class:`UnknownPatError`
naming the value. HTTP-level failures are mapped in :mod:`patwarden.azdo.responses`.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from patwarden.errors import AuthError, AzureDevOpsError, PatwardenError

_PAT_DOCS = "https://learn.microsoft.com/en-us/azure/devops/organizations/accounts/manage-personal-access-tokens-via-api"
_POLICY_DOCS = "https://learn.microsoft.com/en-us/azure/devops/organizations/accounts/manage-pats-with-policies-for-administrators"

# --- HTTP-level errors ------------------------------------------------------------------------


class AzdoRequestError(AzureDevOpsError):
    """A request to Azure DevOps failed, or its answer could not be used."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type_key: str | None = None,
        hint: str | None = None,
        docs: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint, docs=docs)
        self.status = status
        self.type_key = type_key


class AzdoBadRequest(AzdoRequestError):
    """HTTP 400: Azure DevOps could not accept the request as sent."""


class AzdoNotFound(AzdoRequestError):
    """HTTP 404: the organization, project or object does not exist (or is invisible to us)."""


class AzdoRateLimited(AzdoRequestError):
    """HTTP 429 (or an advised wait too long to sit out): the identity is being throttled."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = 429,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, status=status, hint=hint)
        self.retry_after = retry_after


class AzdoServerError(AzdoRequestError):
    """HTTP 5xx after every retry: Azure DevOps is failing, not our request."""


class AzdoConnectionError(AzdoRequestError):
    """No usable answer at all after every retry: timeouts, refused or reset connections, TLS."""


class AzdoUnexpectedResponse(AzdoRequestError):
    """Azure DevOps answered, but not in a shape this client understands."""


class RequestOutcomeUnknown(AzdoRequestError):
    """A non-idempotent request may or may not have taken effect; it was deliberately not resent."""


class CreateOutcomeUnknown(RequestOutcomeUnknown):
    """A PAT create may have succeeded although its response was lost.

    Look the PAT up by its display name (``PatClient.find_by_display_name``) before creating again.
    """

    def __init__(
        self,
        message: str,
        *,
        organization: str,
        display_name: str,
        status: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, status=status, hint=hint)
        self.organization = organization
        self.display_name = display_name


class AzdoAccessDenied(AuthError):
    """Azure DevOps rejected the credential or its permissions (401, 403, 203 sign-in, 302)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type_key: str | None = None,
        hint: str | None = None,
        docs: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint, docs=docs)
        self.status = status
        self.type_key = type_key


class ServicePrincipalNotAllowed(AzdoAccessDenied):
    """The PAT API refused a service principal / managed identity token (contract §2)."""


class EntraTokenRequired(AzdoAccessDenied):
    """The PAT API refused a PAT/Basic credential; it accepts only Entra user tokens (§1.8)."""


# --- patTokenError ----------------------------------------------------------------------------


class PatApiError(AzureDevOpsError):
    """The PAT Lifecycle API refused an operation with a ``patTokenError`` value."""

    def __init__(
        self, message: str, *, code: str, hint: str | None = None, docs: str | None = None
    ):
        super().__init__(message, hint=hint, docs=docs)
        self.code = code


class PatPolicyViolation(PatApiError):
    """A tenant or organization PAT policy forbids the request; ``policy`` names which one."""

    def __init__(self, message: str, *, code: str, policy: str, hint: str, docs: str) -> None:
        super().__init__(message, code=code, hint=hint, docs=docs)
        self.policy = policy


class PatNotFound(PatApiError):
    """No PAT (authorization) with that id exists for this user in this organization."""


class PatRequestRejected(PatApiError):
    """The request's display name, scopes, expiry or target was invalid."""


class PatNotModifiable(PatApiError):
    """The PAT exists but can no longer be changed (revoked, or expired and not extendable)."""


class PatServiceFailure(PatApiError):
    """Azure DevOps failed internally while handling the PAT request; retry later."""


class UnknownPatError(PatApiError):
    """A ``patTokenError`` value this version of patwarden does not know."""


class PatAccessDenied(AuthError):
    """The signed-in identity or app may not perform this PAT operation."""

    def __init__(
        self, message: str, *, code: str, hint: str | None = None, docs: str | None = None
    ):
        super().__init__(message, hint=hint, docs=docs)
        self.code = code


class _Rule(NamedTuple):
    kind: type[PatApiError] | type[PatAccessDenied]
    what: str
    hint: str
    policy: str | None = None


_RELOGIN = (
    "Sign in as the rotator user with `patwarden login --identity rotator`, using an app "
    "registration that has the delegated Azure DevOps permissions vso.pats and vso.pats_manage."
)
_RESYNC = (
    "The PAT was probably revoked or deleted outside patwarden; run `patwarden status` and "
    "`patwarden adopt` to resync, or rotate to issue a new one."
)
_RETRY = "Retry later; if it persists, check https://status.dev.azure.com."
_NEW_PAT = "Rotate the token (create a new PAT) instead of updating this one."

_RULES: dict[str, _Rule] = {
    "displayNameRequired": _Rule(
        PatRequestRejected, "the display name is empty", "Give the PAT a display name."
    ),
    "invalidDisplayName": _Rule(
        PatRequestRejected,
        "the display name was rejected (too long or with characters the service refuses)",
        "Shorten the token name and use letters, digits, '-', '_' and '.'.",
    ),
    "invalidValidTo": _Rule(
        PatRequestRejected,
        "the expiry (validTo) is in the past or beyond the one-year maximum",
        "Set the token's lifetime between one day and one year.",
    ),
    "invalidScope": _Rule(
        PatRequestRejected,
        "one or more scopes are not valid PAT scopes",
        "Use documented scope strings such as vso.code or vso.packaging_write; check for typos.",
    ),
    "userIdRequired": _Rule(PatAccessDenied, "the request carried no user identity", _RELOGIN),
    "invalidUserId": _Rule(PatAccessDenied, "the signed-in user id is not valid here", _RELOGIN),
    "invalidUserType": _Rule(
        PatAccessDenied,
        "the signed-in identity is not a user that may own PATs (e.g. a guest or an app)",
        "Use a member user of the organization's Entra tenant as the rotator.",
    ),
    "accessDenied": _Rule(
        PatAccessDenied,
        "the signed-in user may not manage this PAT (it belongs to another user, or the user has "
        "no access to the organization)",
        "Manage a PAT with the same user that created it; a Project Collection Administrator "
        "can revoke other users' PATs through Token Admin (`patwarden revoke --admin`).",
    ),
    "failedToIssueAccessToken": _Rule(
        PatServiceFailure, "the service failed to issue the token", _RETRY
    ),
    "invalidClient": _Rule(PatAccessDenied, "the Entra app used to sign in is refused", _RELOGIN),
    "invalidClientType": _Rule(
        PatAccessDenied, "the Entra app used to sign in has a refused client type", _RELOGIN
    ),
    "invalidClientId": _Rule(
        PatAccessDenied, "the Entra app (client id) used to sign in is not allowed", _RELOGIN
    ),
    "invalidTargetAccounts": _Rule(
        PatRequestRejected,
        "the target organizations are invalid",
        "Create organization-scoped PATs (allOrgs false) against the organization's own URL.",
    ),
    "hostAuthorizationNotFound": _Rule(
        PatNotFound, "the PAT's organization authorization was not found", _RESYNC
    ),
    "authorizationNotFound": _Rule(PatNotFound, "no PAT with that authorization id", _RESYNC),
    "failedToUpdateAccessToken": _Rule(
        PatServiceFailure, "the service failed to update the token", _RETRY
    ),
    "sourceNotSupported": _Rule(PatRequestRejected, "the request source is not supported", _RETRY),
    "invalidSourceIP": _Rule(
        PatAccessDenied,
        "the request came from an IP address that a conditional-access policy does not allow",
        "Run patwarden from an allowed network, or ask an admin to review the IP conditional "
        "access policy for the organization.",
    ),
    "invalidSource": _Rule(PatRequestRejected, "the request source is invalid", _RETRY),
    "duplicateHash": _Rule(
        PatServiceFailure, "the generated token collided with an existing one", _RETRY
    ),
    "sshPolicyDisabled": _Rule(
        PatPolicyViolation,
        "SSH authentication is disabled by organization policy",
        "Ask a Project Collection Administrator to enable the SSH authentication policy, or "
        "use HTTPS with a PAT.",
        policy="ssh-authentication",
    ),
    "invalidToken": _Rule(
        PatNotModifiable, "the PAT is revoked or otherwise no longer valid", _NEW_PAT
    ),
    "tokenNotFound": _Rule(PatNotFound, "no PAT with that authorization id", _RESYNC),
    "invalidAuthorizationId": _Rule(
        PatRequestRejected,
        "the authorization id is malformed",
        "Pass the authorizationId GUID shown by `patwarden pat list`.",
    ),
    "failedToReadTenantPolicy": _Rule(
        PatServiceFailure, "the service could not read the tenant's PAT policies", _RETRY
    ),
    "globalPatPolicyViolation": _Rule(
        PatPolicyViolation,
        "the tenant policy 'Restrict global personal access token creation' forbids a PAT "
        "valid in all organizations",
        "Create an organization-scoped PAT (drop allow_global / allOrgs), or ask an Azure DevOps "
        "Administrator to add the rotator user to that policy's allowlist.",
        policy="restrict-global-pat",
    ),
    "fullScopePatPolicyViolation": _Rule(
        PatPolicyViolation,
        "the tenant policy 'Restrict full-scoped personal access token creation' forbids "
        "full access (app_token)",
        "List explicit scopes instead of full access, or ask an Azure DevOps Administrator to "
        "add the rotator user to that policy's allowlist.",
        policy="restrict-full-scope-pat",
    ),
    "patLifespanPolicyViolation": _Rule(
        PatPolicyViolation,
        "the requested expiry exceeds the tenant policy 'Enforce maximum personal access token "
        "lifespan'",
        "Shorten this token's `lifetime` below the policy's maximum (ask an Azure DevOps "
        "Administrator for the value), or have the rotator user added to the policy allowlist.",
        policy="max-pat-lifespan",
    ),
    "invalidTokenType": _Rule(
        PatAccessDenied, "the presented access token is of a type the PAT API refuses", _RELOGIN
    ),
    "invalidAudience": _Rule(
        PatAccessDenied,
        "the presented access token is not for Azure DevOps (wrong audience)",
        _RELOGIN,
    ),
    "invalidSubject": _Rule(
        PatAccessDenied, "the presented access token's subject is refused", _RELOGIN
    ),
    "deploymentHostNotSupported": _Rule(
        PatRequestRejected,
        "the URL addresses the deployment, not an organization",
        "Check `organization` and `vssps_url` (https://vssps.dev.azure.com/<organization>).",
    ),
    "disablePatCreationPolicyViolation": _Rule(
        PatPolicyViolation,
        "the organization policy 'Restrict personal access token creation' forbids this user "
        "(or these scopes) from creating PATs",
        "Ask a Project Collection Administrator to add the rotator user to that policy's "
        "allowlist (and, if 'packaging scopes only' is on, to allow these scopes).",
        policy="restrict-pat-creation",
    ),
    "failedToReadOrgPolicy": _Rule(
        PatServiceFailure, "the service could not read the organization's PAT policies", _RETRY
    ),
    "globalPATCreationBlocked": _Rule(
        PatPolicyViolation,
        "global PATs (valid in all organizations) can no longer be created",
        "Create an organization-scoped PAT (drop allow_global / allOrgs); global PATs stop "
        "working on 2026-12-01.",
        policy="global-pat-retirement",
    ),
    "expiredPatCannotBeExtended": _Rule(
        PatNotModifiable, "the PAT has already expired and cannot be extended", _NEW_PAT
    ),
}

# All documented values in 7.2 spec order (contract §1.7), "none" meaning success.
PAT_TOKEN_ERRORS: tuple[str, ...] = ("none", *_RULES)

_SECRETISH = re.compile(
    r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"  # a JWT
    r"|(?:Bearer|Basic)\s+\S+"  # an Authorization header value
    r"|[A-Za-z0-9+/=_-]{40,}"  # a long opaque token (PATs are 52+ characters)
)


def sanitize_server_text(text: str, *, limit: int = 300) -> str:
    """Shorten server-provided text for a message, dropping anything that looks like a secret."""
    cleaned = _SECRETISH.sub("[redacted]", " ".join(str(text).split()))
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def pat_error(
    code: str, *, action: str, server_message: str | None = None
) -> PatwardenError | None:
    """Return the exception for a ``patTokenError`` *code*, or None for ``"none"``.

    *action* completes "Azure DevOps refused to …", e.g. "create PAT 'x' in organization 'y'".
    """
    if code == "none":
        return None
    said = f" Server said: {sanitize_server_text(server_message)}" if server_message else ""
    rule = _RULES.get(code)
    if rule is None:
        return UnknownPatError(
            f"Azure DevOps refused to {action} with an error this patwarden version does not "
            f"know (patTokenError '{sanitize_server_text(code, limit=80)}').{said}",
            code=code,
            hint="Upgrade patwarden; if the error persists, report it with this message.",
            docs=_PAT_DOCS,
        )
    message = f"Azure DevOps refused to {action}: {rule.what} (patTokenError '{code}').{said}"
    if rule.policy is not None:
        return PatPolicyViolation(
            message, code=code, policy=rule.policy, hint=rule.hint, docs=_POLICY_DOCS
        )
    return rule.kind(message, code=code, hint=rule.hint, docs=_PAT_DOCS)
