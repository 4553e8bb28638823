"""The offline PAT issuer: for work that must not reach Azure DevOps (``plan``).

The issuer that does reach Azure DevOps is :class:`~patwarden.rotation.adapters.AzdoPatIssuer`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from patwarden.domain.models import CreatedPat, IssuedPat
from patwarden.errors import PatwardenError

if TYPE_CHECKING:
    pass

__all__ = ["OfflineIssuer"]


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
