"""Azure DevOps as an inventory source: Graph users, Token Admin PATs, membership states.

Owner status (contract §3.1, Graph): ``isDeletedInOrigin`` marks a user removed from Entra; a
disabled one shows only through ``graph/membershipstates/{descriptor}`` (``active: false``). That
costs one request per user, so it is asked only for users who still hold a PAT that may work (the
only ones an owner finding can be about); the others stay ``unknown``.

Access problems are re-raised as :class:`InventoryAccessDenied`, which names the identity and
the role it needs: Token Admin is for Project Collection Administrators (contract §3.1) and may be
closed to service principals (contract §3.3, open question 6).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterator
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from patwarden.azdo import validation
from patwarden.azdo.constants import DEFAULT_SCOPE, GRAPH_API_VERSION
from patwarden.azdo.errors import AzdoAccessDenied, AzdoNotFound, ServicePrincipalNotAllowed
from patwarden.azdo.graph import GraphClient
from patwarden.azdo.models import SessionToken, as_object
from patwarden.azdo.responses import json_body
from patwarden.azdo.token_admin import TokenAdminClient
from patwarden.azdo.transport import AzdoTransport, Bearer, ServiceUrls
from patwarden.domain.marker import parse_marker
from patwarden.errors import AuthError
from patwarden.inventory.model import Owner, OwnerStatus, PatRecord

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)

_DOCS = "https://github.com/patwarden/patwarden/blob/main/docs/inventory.md#permissions"
_ADMIN_DOCS = (
    "https://learn.microsoft.com/en-us/azure/devops/organizations/accounts/admin-revoke-user-pats"
)


class InventoryAccessDenied(AuthError):
    """The auditor identity may not list users or PATs (or revoke them) in an organization."""


def access_denied(
    err: AzdoAccessDenied, *, identity: str, organization: str, action: str
) -> InventoryAccessDenied:
    """Turn an Azure DevOps refusal into a message naming the identity and the role it needs."""
    first = str(err.message).splitlines()[0] if err.message else "access denied"
    if isinstance(err, ServicePrincipalNotAllowed):
        hint = (
            f"Organization {organization!r} does not let service principals use Token Admin. "
            f"Make identity {identity!r} a user (kind: user) who is a Project Collection "
            f"Administrator of {organization!r}, and sign it in with "
            f"`patwarden login --identity {identity}`."
        )
    else:
        hint = (
            f"Add identity {identity!r} to the Project Collection Administrators group of "
            f"{organization!r} (Organization settings > Permissions), or set `auditor:` to an "
            "identity that is; user identities also need the vso.tokenadministration and "
            "vso.graph permissions consented for their app."
        )
    return InventoryAccessDenied(
        f"Identity {identity!r} may not {action} in organization {organization!r}: {first}",
        hint=hint,
        docs=_DOCS,
    )


ManagedPredicate = Callable[[str, str, str | None], bool]
"""``(authorization_id, display_name, owner principal name) -> managed by patwarden?``"""


def default_is_managed(
    managed_ids: Collection[str] = (),
    *,
    tokens: Collection[str] | None = None,
    rotators: Collection[str] | None = None,
) -> ManagedPredicate:
    """Return a predicate: managed when the state store knows the id, or the display name has
    patwarden's marker of a configured token (*tokens*) and the owner is a configured rotator
    (*rotators*, principal names). Anyone can name a PAT ``patwarden:x:…``: with *tokens* and
    *rotators* given, such a PAT of another user or token is not managed.

    *managed_ids* are authorization ids the state store knows (current and previous PATs).
    """
    known = frozenset(i.lower() for i in managed_ids)
    names = None if tokens is None else frozenset(tokens)
    owners = None if rotators is None else frozenset(r.lower() for r in rotators)

    def is_managed(authorization_id: str, display_name: str, owner: str | None = None) -> bool:
        if authorization_id.lower() in known:
            return True
        marker = parse_marker(display_name)
        if marker is None or (names is not None and marker.token_name not in names):
            return False
        return owners is None or (owner or "").lower() in owners

    return is_managed


def owner_from_graph(
    *, descriptor: str, principal_name: str | None, display_name: str | None, deleted: bool | None
) -> Owner:
    """Return the owner a Graph user describes: removed when ``isDeletedInOrigin``, else unknown
    until the membership state is read."""
    return Owner(
        descriptor=descriptor,
        principal_name=principal_name,
        display_name=display_name,
        status=OwnerStatus.REMOVED if deleted else OwnerStatus.UNKNOWN,
    )


def record_from_session_token(
    token: SessionToken, *, organization: str, owner: Owner, managed: bool
) -> PatRecord:
    """Return the inventory record of one Token Admin ``SessionToken``."""
    return PatRecord(
        organization=organization,
        owner=owner,
        authorization_id=token.authorization_id,
        display_name=token.display_name,
        scopes=token.scope,
        valid_from=token.valid_from,
        valid_to=token.valid_to,
        is_global=token.target_accounts is None,
        is_valid=token.is_valid,
        managed=managed,
    )


def _may_work(token: SessionToken, *, now: datetime) -> bool:
    return token.is_valid is not False and (token.valid_to is None or token.valid_to > now)


class AzdoInventorySource:
    """An :class:`~patwarden.inventory.scanner.InventorySource` over the Azure DevOps REST API.

    Thread-safe: the scanner's workers share it (and so the transport's rate limiter).
    """

    def __init__(
        self,
        *,
        transport: AzdoTransport,
        urls: ServiceUrls,
        identity: str,
        now: Callable[[], datetime],
        is_managed: ManagedPredicate | None = None,
        scopes: tuple[str, ...] = (DEFAULT_SCOPE,),
        page_size: int = 100,
    ) -> None:
        self._transport = transport
        self._urls = urls
        self._identity = identity
        self._now = now
        self._is_managed = is_managed or default_is_managed()
        self._auth = Bearer(scopes)
        self._graph = GraphClient(transport=transport, urls=urls, scopes=scopes)
        self._admin = TokenAdminClient(transport=transport, urls=urls, scopes=scopes)
        self._page_size = page_size
        self._lock = threading.Lock()
        self.users_gone = 0

    def iter_owners(self, *, organization: str) -> Iterator[Owner]:
        """Yield every Graph user of *organization*.

        Raises:
            InventoryAccessDenied: the identity may not read the organization's users.
        """
        try:
            for user in self._graph.iter_users(org=organization):
                yield owner_from_graph(
                    descriptor=user.descriptor,
                    principal_name=user.principal_name,
                    display_name=user.display_name,
                    deleted=user.is_deleted_in_origin,
                )
        except AzdoAccessDenied as err:
            raise access_denied(
                err, identity=self._identity, organization=organization, action="list users"
            ) from None

    def is_member_active(self, *, organization: str, descriptor: str) -> bool | None:
        """Return Graph's membership state of a user (None when the user is gone)."""
        url = (
            f"{self._urls.vssps_url}/{validation.organization(organization)}/_apis/graph/"
            f"membershipstates/{validation.descriptor(descriptor)}"
        )
        action = f"read the membership state of {descriptor!r} in {organization!r}"
        try:
            response: httpx.Response = self._transport.send(
                "GET", url, action=action, api_version=GRAPH_API_VERSION, auth=self._auth
            )
        except AzdoNotFound:
            return None
        active = as_object(json_body(response, action=action), what="a state", action=action)
        return active.get("active") is not False

    def _owner_status(self, organization: str, owner: Owner) -> Owner:
        if owner.status is not OwnerStatus.UNKNOWN:
            return owner
        active = self.is_member_active(organization=organization, descriptor=owner.descriptor)
        if active is None:
            return replace(owner, status=OwnerStatus.REMOVED)
        return replace(owner, status=OwnerStatus.ACTIVE if active else OwnerStatus.DISABLED)

    def iter_pats(self, *, organization: str, owner: Owner) -> Iterator[PatRecord]:
        """Yield the PATs of *owner*, with the owner's status resolved when it matters.

        Raises:
            InventoryAccessDenied: the identity is not a Project Collection Administrator.
        """
        try:
            tokens = [
                t
                for t in self._admin.list_user_tokens(
                    org=organization,
                    subject_descriptor=owner.descriptor,
                    page_size=self._page_size,
                )
                if t.is_public is not True
            ]
            now = self._now()
            if any(_may_work(t, now=now) for t in tokens):
                owner = self._owner_status(organization, owner)
        except AzdoNotFound:
            # Listed by Graph a moment ago, gone now: nothing of theirs is left to list.
            with self._lock:
                self.users_gone += 1
            logger.info("User %s left %s during the scan", owner.name, organization)
            return
        except AzdoAccessDenied as err:
            raise access_denied(
                err,
                identity=self._identity,
                organization=organization,
                action="list other users' PATs (Token Admin)",
            ) from None
        for token in tokens:
            managed = self._is_managed(
                token.authorization_id, token.display_name, owner.principal_name
            )
            yield record_from_session_token(
                token, organization=organization, owner=owner, managed=managed
            )

    def revoke(self, *, organization: str, authorization_ids: Collection[str]) -> None:
        """Revoke these PATs through Token Admin (idempotent).

        Raises:
            InventoryAccessDenied: the identity may not revoke other users' PATs.
        """
        try:
            self._admin.revoke(org=organization, authorization_ids=authorization_ids)
        except AzdoAccessDenied as err:
            raise access_denied(
                err,
                identity=self._identity,
                organization=organization,
                action="revoke other users' PATs (Token Admin)",
            ) from None
