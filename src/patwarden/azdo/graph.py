"""Graph users: who is in the organization, with the descriptors Token Admin needs.

``{vssps_url}/{org}/_apis/graph/users?api-version=7.1-preview.1``, paged by the
``X-MS-ContinuationToken`` response header echoed back as the ``continuationToken`` query parameter.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from patwarden.azdo import validation
from patwarden.azdo.constants import GRAPH_API_VERSION
from patwarden.azdo.models import GraphUser
from patwarden.azdo.paging import header_token, iter_page_items
from patwarden.azdo.resource import ResourceClient


class GraphClient(ResourceClient):
    """List an organization's users (thread-safe)."""

    def iter_users(
        self, *, org: str, subject_types: Sequence[str] | None = None
    ) -> Iterator[GraphUser]:
        """Yield every user of *org*; *subject_types* filters by origin (e.g. ``("aad",)``).

        Raises:
            ConfigError: a bad organization name.
            AzdoUnexpectedResponse: a page is malformed or a continuation token repeats.
        """
        url = f"{self._urls.vssps_url}/{validation.organization(org)}/_apis/graph/users"
        action = f"list the users of organization {org!r}"
        types = ",".join(subject_types) if subject_types else None
        items = iter_page_items(
            self._transport,
            url,
            action=action,
            api_version=GRAPH_API_VERSION,
            auth=self._auth,
            params={"subjectTypes": types},
            items_key="value",
            next_token=header_token,
        )
        for item in items:
            yield GraphUser.from_json(item, action=action)
