"""PAT issuers the runtime builds: the configured Azure DevOps issuer, and an offline stand-in.

:class:`ConfiguredIssuer` is :class:`~patwarden.engine_adapters.AzdoPatIssuer` with one change:
it may create an ``app_token`` (full access) PAT, but only for the tokens whose configuration
says ``allow_full_access: true`` (recognised by the marker in the display name); every other
create goes through the base class, which refuses full access. :class:`OfflineIssuer` refuses
every call, for work that must not reach Azure DevOps (``plan``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from patwarden.config_tokens import FULL_ACCESS_SCOPE
from patwarden.domain.marker import parse_marker
from patwarden.domain.models import CreatedPat, IssuedPat
from patwarden.engine_adapters import AzdoPatIssuer
from patwarden.errors import PatwardenError
from patwarden.ports import Clock, IssueOutcomeUnknown

if TYPE_CHECKING:
    from patwarden.azdo.client import AzureDevOpsClient

__all__ = ["ConfiguredIssuer", "OfflineIssuer"]


class ConfiguredIssuer(AzdoPatIssuer):
    """The Azure DevOps issuer, allowing ``app_token`` only for tokens configured to allow it."""

    def __init__(
        self, *, client: AzureDevOpsClient, clock: Clock, full_access_tokens: frozenset[str]
    ) -> None:
        super().__init__(client=client, clock=clock)
        self._azdo = client
        self._full_access_tokens = full_access_tokens

    def create(
        self, *, organization: str, display_name: str, scopes: Sequence[str], valid_to: datetime
    ) -> CreatedPat:
        """Create an organization-bound PAT (see :meth:`AzdoPatIssuer.create`).

        Raises:
            IssueOutcomeUnknown | AzureDevOpsError | AuthError: as the base class.
        """
        marker = parse_marker(display_name)
        allowed = marker is not None and marker.token_name in self._full_access_tokens
        if FULL_ACCESS_SCOPE not in scopes or not allowed:
            return super().create(
                organization=organization,
                display_name=display_name,
                scopes=scopes,
                valid_to=valid_to,
            )
        from patwarden.azdo.errors import CreateOutcomeUnknown

        try:
            result = self._azdo.pats.create(
                org=organization,
                display_name=display_name,
                scopes=scopes,
                valid_to=valid_to,
                all_orgs=False,
                allow_full_access=True,
            )
        except CreateOutcomeUnknown as exc:
            raise IssueOutcomeUnknown(exc.message, hint=exc.hint, docs=exc.docs) from None
        return CreatedPat(pat=self._issued(result.token), secret=result.value)


class OfflineIssuer:
    """An issuer for work that must not reach Azure DevOps (``plan``): every call is refused."""

    def _refuse(self) -> PatwardenError:
        return PatwardenError("this command works offline and may not call Azure DevOps")

    def create(
        self, *, organization: str, display_name: str, scopes: Sequence[str], valid_to: datetime
    ) -> CreatedPat:
        raise self._refuse()

    def get(self, *, organization: str, authorization_id: str) -> IssuedPat | None:
        raise self._refuse()

    def list_marked(self, *, organization: str) -> Sequence[IssuedPat]:
        raise self._refuse()

    def revoke(self, *, organization: str, authorization_id: str) -> None:
        raise self._refuse()

    def verify(self, *, organization: str, secret: object, scopes: Sequence[str]) -> None:
        raise self._refuse()
