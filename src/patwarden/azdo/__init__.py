"""Typed, thread-safe Azure DevOps REST client over httpx (sync).

Entry point: :class:`AzureDevOpsClient` (one per identity) with ``.pats`` (PAT Lifecycle API,
contract §1), ``.token_admin`` (§3.1), ``.graph`` (users), ``.variable_groups`` (§9.1),
``.service_endpoints`` (§9.2) and :meth:`~AzureDevOpsClient.verify_pat` (§6). "Contract" is
``docs/azure-api-contract.md`` of the shared product docs; comments cite its sections where they
decide behaviour.

- Auth: a ``TokenCredential`` is asked for a token on every request; PAT calls request
  ``…/vso.pats`` and ``…/vso.pats_manage``, others ``…/.default`` (configurable). Only verify_pat
  uses a PAT (Basic auth).
- Safety: org, project and id values are validated before they reach a URL (``ConfigError``);
  PATs are created with ``allOrgs: false`` unless ``all_orgs`` and ``allow_global`` are both
  set; ``targetAccounts`` is never sent; secrets travel as :class:`~patwarden.secret.Secret` and
  never appear in logs, messages or reprs; TLS is always verified (public CAs, or ca_bundle).
- Errors: every ``patTokenError`` value and HTTP failure maps to a subclass of
  ``AzureDevOpsError`` (or ``AuthError`` for access problems) with a hint (``errors.py``,
  ``responses.py``).
- Retries and rate limits: bounded jittered backoff; ``Retry-After`` and ``X-RateLimit-*`` drive a
  :class:`RateLimiter` shared by every request of an identity. A PAT create is never resent once it
  may have reached the service: :class:`CreateOutcomeUnknown` tells the caller to look it up with
  ``PatClient.find_by_display_name`` (see ``transport.py`` for the exact rule).
- Policy clamping of ``validTo`` is reported in ``PatCreateResult.clamped_from``; the refusing
  variant raises :class:`PatPolicyViolation` (contract §1.7, "Conflict").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from patwarden import lazy

if TYPE_CHECKING:
    from patwarden.azdo.client import AzureDevOpsClient
    from patwarden.azdo.constants import (
        ADO_RESOURCE_ID,
        DEFAULT_SCOPE,
        PAT_MANAGE_SCOPE,
        PAT_READ_SCOPE,
        PAT_SCOPES,
    )
    from patwarden.azdo.errors import (
        PAT_TOKEN_ERRORS,
        AzdoAccessDenied,
        AzdoBadRequest,
        AzdoConnectionError,
        AzdoNotFound,
        AzdoRateLimited,
        AzdoRequestError,
        AzdoServerError,
        AzdoUnexpectedResponse,
        CreateOutcomeUnknown,
        EntraTokenRequired,
        PatAccessDenied,
        PatApiError,
        PatNotFound,
        PatNotModifiable,
        PatPolicyViolation,
        PatRequestRejected,
        PatServiceFailure,
        RequestOutcomeUnknown,
        ServicePrincipalNotAllowed,
        UnknownPatError,
    )
    from patwarden.azdo.models import (
        DisplayFilter,
        GraphUser,
        PatCreateResult,
        PatToken,
        PatUpdateResult,
        SessionToken,
        SortBy,
    )
    from patwarden.azdo.ratelimit import RateLimiter, RateLimiterRegistry
    from patwarden.azdo.service_endpoints import ServiceEndpoint, ServiceEndpointUpdate
    from patwarden.azdo.transport import RetryPolicy, ServiceUrls
    from patwarden.azdo.variable_groups import Variable, VariableGroup, VariableGroupUpdate
    from patwarden.azdo.verify import PatVerification, VerifyFailure

# Each name's module, imported on first use: `import patwarden.azdo.ratelimit` (the rate limiters
# every command's AppContext builds) must not import httpx, which `status` and `plan` never use.
_LAZY = {
    "AzureDevOpsClient": "patwarden.azdo.client",
    "ADO_RESOURCE_ID": "patwarden.azdo.constants",
    "DEFAULT_SCOPE": "patwarden.azdo.constants",
    "PAT_MANAGE_SCOPE": "patwarden.azdo.constants",
    "PAT_READ_SCOPE": "patwarden.azdo.constants",
    "PAT_SCOPES": "patwarden.azdo.constants",
    "PAT_TOKEN_ERRORS": "patwarden.azdo.errors",
    "AzdoAccessDenied": "patwarden.azdo.errors",
    "AzdoBadRequest": "patwarden.azdo.errors",
    "AzdoConnectionError": "patwarden.azdo.errors",
    "AzdoNotFound": "patwarden.azdo.errors",
    "AzdoRateLimited": "patwarden.azdo.errors",
    "AzdoRequestError": "patwarden.azdo.errors",
    "AzdoServerError": "patwarden.azdo.errors",
    "AzdoUnexpectedResponse": "patwarden.azdo.errors",
    "CreateOutcomeUnknown": "patwarden.azdo.errors",
    "EntraTokenRequired": "patwarden.azdo.errors",
    "PatAccessDenied": "patwarden.azdo.errors",
    "PatApiError": "patwarden.azdo.errors",
    "PatNotFound": "patwarden.azdo.errors",
    "PatNotModifiable": "patwarden.azdo.errors",
    "PatPolicyViolation": "patwarden.azdo.errors",
    "PatRequestRejected": "patwarden.azdo.errors",
    "PatServiceFailure": "patwarden.azdo.errors",
    "RequestOutcomeUnknown": "patwarden.azdo.errors",
    "ServicePrincipalNotAllowed": "patwarden.azdo.errors",
    "UnknownPatError": "patwarden.azdo.errors",
    "DisplayFilter": "patwarden.azdo.models",
    "GraphUser": "patwarden.azdo.models",
    "PatCreateResult": "patwarden.azdo.models",
    "PatToken": "patwarden.azdo.models",
    "PatUpdateResult": "patwarden.azdo.models",
    "SessionToken": "patwarden.azdo.models",
    "SortBy": "patwarden.azdo.models",
    "RateLimiter": "patwarden.azdo.ratelimit",
    "RateLimiterRegistry": "patwarden.azdo.ratelimit",
    "ServiceEndpoint": "patwarden.azdo.service_endpoints",
    "ServiceEndpointUpdate": "patwarden.azdo.service_endpoints",
    "RetryPolicy": "patwarden.azdo.transport",
    "ServiceUrls": "patwarden.azdo.transport",
    "Variable": "patwarden.azdo.variable_groups",
    "VariableGroup": "patwarden.azdo.variable_groups",
    "VariableGroupUpdate": "patwarden.azdo.variable_groups",
    "PatVerification": "patwarden.azdo.verify",
    "VerifyFailure": "patwarden.azdo.verify",
}


__getattr__ = lazy.exports(__name__, _LAZY)


__all__ = [
    "ADO_RESOURCE_ID",
    "DEFAULT_SCOPE",
    "PAT_MANAGE_SCOPE",
    "PAT_READ_SCOPE",
    "PAT_SCOPES",
    "PAT_TOKEN_ERRORS",
    "AzdoAccessDenied",
    "AzdoBadRequest",
    "AzdoConnectionError",
    "AzdoNotFound",
    "AzdoRateLimited",
    "AzdoRequestError",
    "AzdoServerError",
    "AzdoUnexpectedResponse",
    "AzureDevOpsClient",
    "CreateOutcomeUnknown",
    "DisplayFilter",
    "EntraTokenRequired",
    "GraphUser",
    "PatAccessDenied",
    "PatApiError",
    "PatCreateResult",
    "PatNotFound",
    "PatNotModifiable",
    "PatPolicyViolation",
    "PatRequestRejected",
    "PatServiceFailure",
    "PatToken",
    "PatUpdateResult",
    "PatVerification",
    "RateLimiter",
    "RateLimiterRegistry",
    "RequestOutcomeUnknown",
    "RetryPolicy",
    "ServiceEndpoint",
    "ServiceEndpointUpdate",
    "ServicePrincipalNotAllowed",
    "ServiceUrls",
    "SessionToken",
    "SortBy",
    "UnknownPatError",
    "Variable",
    "VariableGroup",
    "VariableGroupUpdate",
    "VerifyFailure",
]
