"""Token Admin: list any user's PATs and revoke them, as a Project Collection Administrator.

``{vssps_url}/{org}/_apis/tokenadmin/personalaccesstokens/{subjectDescriptor}`` and
``…/_apis/tokenadmin/revocations`` (contract §3.1). These APIs cannot create PATs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from patwarden.azdo import validation
from patwarden.azdo.constants import TOKEN_ADMIN_API_VERSION
from patwarden.azdo.models import SessionToken
from patwarden.azdo.paging import body_token, iter_page_items
from patwarden.azdo.resource import ResourceClient
from patwarden.errors import ConfigError

MAX_PAGE_SIZE = 100


class TokenAdminClient(ResourceClient):
    """View and revoke other users' PATs in an organization (caller must be a PCA)."""

    def _base(self, org: str) -> str:
        return f"{self._urls.vssps_url}/{validation.organization(org)}/_apis/tokenadmin"

    def list_user_tokens(
        self, *, org: str, subject_descriptor: str, page_size: int = MAX_PAGE_SIZE
    ) -> Iterator[SessionToken]:
        """Yield the PATs of the user *subject_descriptor* (from the Graph API), page by page.

        Pages are chained by ``continuationToken``; "the only reliable way to know if there is
        more data is the presence of a continuation token" (contract §3.1).

        Raises:
            ConfigError: a bad organization, descriptor or page size.
            AzdoAccessDenied: the caller is not a Project Collection Administrator.
            AzdoNotFound: no such user.
        """
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ConfigError(f"Token Admin page size {page_size} is not within 1..100.")
        url = f"{self._base(org)}/personalaccesstokens/{validation.descriptor(subject_descriptor)}"
        action = f"list the PATs of user {subject_descriptor!r} in organization {org!r}"
        items = iter_page_items(
            self._transport,
            url,
            action=action,
            api_version=TOKEN_ADMIN_API_VERSION,
            auth=self._auth,
            params={"pageSize": page_size, "isPublic": False},
            items_key="value",
            next_token=body_token,
        )
        for item in items:
            yield SessionToken.from_json(item, action=action)

    def revoke(self, *, org: str, authorization_ids: Iterable[str]) -> None:
        """Revoke the PATs with these authorization ids (any user's); the service answers 204.

        Revoking is idempotent, so this request is retried like a read. Revocation can take up to
        an hour to take effect everywhere (contract §3.1).

        Raises:
            ConfigError: no ids, or an id that is not a GUID.
            AzdoAccessDenied: the caller is not a Project Collection Administrator.
        """
        ids = [validation.uuid_id(i, what="authorization id") for i in authorization_ids]
        if not ids:
            raise ConfigError("No authorization ids given to revoke.")
        self._transport.send(
            "POST",
            f"{self._base(org)}/revocations",
            action=f"revoke {len(ids)} PAT(s) as administrator in organization {org!r}",
            api_version=TOKEN_ADMIN_API_VERSION,
            auth=self._auth,
            params={"isPublic": False},
            body=[{"authorizationId": i} for i in ids],
        )
