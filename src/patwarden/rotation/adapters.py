"""Adapters that connect the engine's ports to the real world: the Azure DevOps issuer, a clock.

:class:`AzdoPatIssuer` puts :class:`~patwarden.rotation.ports.PatIssuer` over the typed Azure DevOps
client: it always creates organization-bound PATs (``allOrgs: false``), creates an ``app_token``
(full access) PAT only for the tokens named in ``full_access_tokens`` (recognised by the marker
in the display name; the config names those that say ``allow_full_access: true``), translates a
lost create answer into :class:`~patwarden.rotation.ports.IssueOutcomeUnknown`, treats an
already-gone PAT as revoked, and turns a negative verification verdict into an error the engine
rolls back on.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from patwarden.azdo.errors import CreateOutcomeUnknown, PatNotFound
from patwarden.clock import Clock, SystemClock
from patwarden.domain.marker import parse_marker
from patwarden.domain.models import CreatedPat, IssuedPat
from patwarden.errors import AzureDevOpsError
from patwarden.rotation.ports import IssueOutcomeUnknown
from patwarden.secret import Secret

if TYPE_CHECKING:
    from patwarden.azdo.client import AzureDevOpsClient
    from patwarden.azdo.models import PatToken

__all__ = ["AzdoPatIssuer", "PatRejected", "SystemClock"]


class PatRejected(AzureDevOpsError):
    """Azure DevOps did not accept a PAT when it was checked."""


class AzdoPatIssuer:
    """The :class:`~patwarden.rotation.ports.PatIssuer` port over :class:`AzureDevOpsClient`."""

    def __init__(
        self,
        *,
        client: AzureDevOpsClient,
        clock: Clock | None = None,
        full_access_tokens: frozenset[str] = frozenset(),
    ) -> None:
        self._client = client
        self._clock = clock or SystemClock()
        self._full_access_tokens = full_access_tokens

    def create(
        self, *, organization: str, display_name: str, scopes: Sequence[str], valid_to: datetime
    ) -> CreatedPat:
        """Create an organization-bound PAT.

        Raises:
            IssueOutcomeUnknown: the create was sent but its answer was lost.
            AzureDevOpsError: Azure DevOps refused it (policy, scope, permissions).
            AuthError: the rotator identity could not get a token or may not create PATs.
        """
        marker = parse_marker(display_name)
        try:
            result = self._client.pats.create(
                org=organization,
                display_name=display_name,
                scopes=scopes,
                valid_to=valid_to,
                all_orgs=False,
                allow_full_access=marker is not None
                and marker.token_name in self._full_access_tokens,
            )
        except CreateOutcomeUnknown as exc:
            raise IssueOutcomeUnknown(exc.message, hint=exc.hint, docs=exc.docs) from None
        return CreatedPat(pat=self._issued(result.token), secret=result.value)

    def get(self, *, organization: str, authorization_id: str) -> IssuedPat | None:
        """Return the PAT, or ``None`` if it does not exist.

        Raises:
            AzureDevOpsError: the lookup failed.
        """
        try:
            return self._issued(
                self._client.pats.get(org=organization, authorization_id=authorization_id)
            )
        except PatNotFound:
            return None

    def list_marked(self, *, organization: str) -> Sequence[IssuedPat]:
        """Return the active PATs whose display name carries patwarden's marker.

        Raises:
            AzureDevOpsError: the listing failed.
        """
        return [
            self._issued(token)
            for token in self._client.pats.list_tokens(org=organization)
            if parse_marker(token.display_name) is not None
        ]

    def revoke(self, *, organization: str, authorization_id: str) -> None:
        """Revoke a PAT; one that is already gone counts as revoked.

        Raises:
            AzureDevOpsError: the revoke failed.
        """
        try:
            self._client.pats.revoke(org=organization, authorization_id=authorization_id)
        except PatNotFound:
            return

    def verify(self, *, organization: str, secret: Secret, scopes: Sequence[str]) -> None:
        """Prove the PAT works in ``organization`` with a cheap call inside its scopes.

        Raises:
            PatRejected: Azure DevOps did not accept the PAT.
            AzureDevOpsError: no verdict could be had (server error, throttling, network).
        """
        verdict = self._client.verify_pat(org=organization, pat=secret, scopes=scopes)
        if not verdict.valid:
            raise PatRejected(
                f"The new PAT was not accepted by organization {organization!r} "
                f"({verdict.probe}: {verdict.detail or verdict.status}).",
                hint="Check the token's scopes and the organization's PAT policies.",
            )

    def _issued(self, token: PatToken) -> IssuedPat:
        return IssuedPat(
            authorization_id=token.authorization_id,
            display_name=token.display_name,
            # A PAT without validFrom counts as brand new: never old enough to be an orphan.
            valid_from=token.valid_from or self._clock.now(),
            valid_to=token.valid_to,
            scopes=tuple(token.scope),
        )
