"""Parse v2 ``scope`` strings into one resource + permissions, and check consent (contract §4.1).

A v2 scope names its resource as a prefix: ``499b84ac-…/vso.pats``, ``https://vault.azure.net/.default``.
OpenID scopes (``openid``, ``profile``, ``offline_access``, ``email``) carry no resource. One token
is for one resource; ``/.default`` means "every permission consented for this app".
"""

from __future__ import annotations

from dataclasses import dataclass

from patwarden.domain.scopes import AZURE_DEVOPS_RESOURCE
from patwarden_emulator.directory import KEY_VAULT_RESOURCE, App
from patwarden_emulator.entra.errors import AadError

OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
DEFAULT = ".default"

# Scope prefix (lower-cased) -> the ``aud`` of the tokens issued for it.
_AUDIENCES = {
    AZURE_DEVOPS_RESOURCE: AZURE_DEVOPS_RESOURCE,
    "https://app.vssps.visualstudio.com": AZURE_DEVOPS_RESOURCE,
    KEY_VAULT_RESOURCE: KEY_VAULT_RESOURCE,
    "cfa8b339-82a2-471a-a3c9-0fc0be7a4093": KEY_VAULT_RESOURCE,  # Key Vault's first-party app id
    # Azure Storage: tokens for Azurite's `--oauth basic` (the Blob state backend's tests).
    "https://storage.azure.com": "https://storage.azure.com",
}


@dataclass(frozen=True)
class ScopeRequest:
    """A parsed ``scope`` parameter: one resource, its permissions, and the OpenID scopes."""

    prefix: (
        str  # the resource as the client wrote it, e.g. "499b84ac-…" or "https://vault.azure.net"
    )
    audience: str  # the ``aud`` of the access token
    permissions: tuple[str, ...]  # without the prefix; may be (".default",)
    oidc: frozenset[str]

    @property
    def is_default(self) -> bool:
        return DEFAULT in self.permissions

    @property
    def wants_refresh_token(self) -> bool:
        return "offline_access" in self.oidc

    @property
    def wants_id_token(self) -> bool:
        return "openid" in self.oidc


def _invalid_scope(code: int, message: str) -> AadError:
    return AadError(code, "invalid_scope", message)


def _split(scope: str) -> tuple[str, str]:
    prefix, _, permission = scope.rpartition("/")
    if not prefix or not permission:
        raise _invalid_scope(
            70011,
            f"The provided value for the input parameter 'scope' is not valid. The scope {scope} "
            "is not valid. Name the resource, e.g. 499b84ac-1321-427f-aa17-267ca6975798/vso.pats.",
        )
    return prefix, permission


def parse_scopes(raw: str | None, *, tenant_id: str) -> ScopeRequest:
    """Parse a space-separated ``scope`` value.

    Raises:
        AadError: no scope (AADSTS900144), a scope without a resource (70011), an unknown resource
            (500011), or scopes for more than one resource (28000).
    """
    if not raw or not raw.split():
        raise AadError(
            900144,
            "invalid_request",
            "The request body must contain the following parameter: 'scope'.",
        )
    items = raw.split()
    oidc = frozenset(item for item in items if item in OIDC_SCOPES)
    resource_scopes = [item for item in items if item not in OIDC_SCOPES]
    if not resource_scopes:
        raise _invalid_scope(
            70011,
            f"The provided value for the input parameter 'scope' is not valid. The scope '{raw}' "
            "names no resource; the emulator serves Azure DevOps, Key Vault and Storage.",
        )
    split = [_split(item) for item in resource_scopes]
    prefixes = {prefix.lower() for prefix, _ in split}
    if len(prefixes) > 1:
        raise _invalid_scope(
            28000,
            "Provided value for the input parameter scope is not valid because it contains more "
            f"than one resource. Scope {' '.join(resource_scopes)} is not valid.",
        )
    prefix = split[0][0]
    audience = _AUDIENCES.get(prefix.lower())
    if audience is None:
        raise AadError(
            500011,
            "invalid_resource",
            f"The resource principal named {prefix} was not found in the tenant named {tenant_id}. "
            "This can happen if the application has not been installed by the administrator of the "
            "tenant or consented to by any user in the tenant.",
        )
    permissions = tuple(dict.fromkeys(permission for _, permission in split))
    if DEFAULT in permissions and len(permissions) > 1:
        raise _invalid_scope(
            70011,
            f"The provided value for the input parameter 'scope' is not valid. The scope "
            f"{' '.join(resource_scopes)} combines /.default with individual permissions.",
        )
    return ScopeRequest(prefix=prefix, audience=audience, permissions=permissions, oidc=oidc)


def require_default_only(request: ScopeRequest) -> None:
    """Client-credential flows accept exactly ``<resource>/.default``.

    Raises:
        AadError: AADSTS1002012 otherwise.
    """
    if not request.is_default or request.oidc:
        scopes = " ".join([*(f"{request.prefix}/{p}" for p in request.permissions), *request.oidc])
        raise _invalid_scope(
            1002012,
            f"The provided value for scope {scopes} is not valid. Client credential flows must "
            "have a scope value with /.default suffixed to the resource identifier (application "
            "ID URI).",
        )


def consented_permissions(app: App, audience: str) -> tuple[str, ...]:
    """The delegated permissions of *audience* consented for *app* (only Azure DevOps has any)."""
    return app.delegated_scopes if audience == AZURE_DEVOPS_RESOURCE else ()


def delegated_grant(request: ScopeRequest, *, app: App) -> tuple[str, ...]:
    """Return the permissions a delegated token for *app* carries (its ``scp``).

    Raises:
        AadError: AADSTS65001 (``invalid_grant``, suberror ``consent_required``) when a requested
            permission, or any permission at all for ``/.default``, is not consented.
    """
    consented = consented_permissions(app, request.audience)
    wanted = consented if request.is_default else request.permissions
    missing = [p for p in request.permissions if p != DEFAULT and p not in consented]
    if missing or not wanted:
        raise AadError(
            65001,
            "invalid_grant",
            f"The user or administrator has not consented to use the application with ID "
            f"'{app.client_id}' named '{app.display_name}'. Send an interactive authorization "
            f"request for this user and resource. Missing: {' '.join(missing) or request.prefix}.",
            suberror="consent_required",
        )
    return tuple(wanted)


def granted_scope_string(request: ScopeRequest, granted: tuple[str, ...]) -> str:
    """The ``scope`` field of a delegated token response (prefixed, plus ``/.default`` if asked)."""
    names = [f"{request.prefix}/{permission}" for permission in granted]
    if request.is_default:
        names.append(f"{request.prefix}/{DEFAULT}")
    return " ".join(names)
