"""Username + password (ROPC) sign-in: opt-in only, for MFA-exempt legacy accounts.

Microsoft deprecates the resource-owner password flow; it cannot satisfy MFA and needs an account
exempted from it. It exists so teams can migrate off their old scripts, and it says so on every use.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from patwarden.errors import DOCS, AuthError
from patwarden.identity.aadsts import explain
from patwarden.identity.http import entra_call, msal_session
from patwarden.identity.scopes import PAT_SCOPES
from patwarden.secret import Secret

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken

log = logging.getLogger(__name__)
LEGACY_DOCS = f"{DOCS}/identities.md#legacy-password-flow"


class LegacyPasswordCredential:
    """A ``TokenCredential`` over MSAL's ``acquire_token_by_username_password`` (memory cache)."""

    def __init__(
        self,
        *,
        name: str,
        client_id: str,
        authority: str,
        username: str,
        password: Callable[[], Secret],
        verify: str | bool,
        instance_discovery: bool,
    ) -> None:
        self.name = name
        self.client_id = client_id
        self.authority = authority
        self.username = username
        self._password = password
        self._verify = verify
        self._instance_discovery = instance_discovery
        self._app: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LegacyPasswordCredential(identity={self.name!r}, username={self.username!r})"

    def _msal_app(self) -> Any:
        if self._app is None:
            import msal
            import msal.authority

            if not self._instance_discovery:
                # MSAL builds the ROPC user-realm URL from the authority's host *without its
                # port*, so on a private authority (emulator, port != 443) it calls the wrong
                # server. The realm lookup only serves federated (ADFS) domains of public Azure;
                # mark the host as having none, as MSAL itself does after a 404.
                host = urlsplit(self.authority).hostname or ""
                msal.authority.Authority._domains_without_user_realm_discovery.add(host)
            self._app = msal.PublicClientApplication(
                self.client_id,
                authority=self.authority,
                http_client=msal_session(verify=self._verify),
                instance_discovery=None if self._instance_discovery else False,
            )
        return self._app

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """A token for ``scopes`` (default: the PAT scopes) via the password flow.

        Raises:
            AuthError: Entra refused (MFA required, wrong password, app or tenant not found, …).
        """
        from azure.core.credentials import AccessToken

        log.warning(
            "identity %r uses the legacy password (ROPC) flow: it is deprecated by Microsoft, "
            "insecure "
            "(a stored password), and blocked by MFA — move to kind: user with `patwarden "
            "login` (%s)",
            self.name,
            LEGACY_DOCS,
        )
        wanted = list(scopes or PAT_SCOPES)
        with self._lock, entra_call(authority=self.authority, action="sign in by password"):
            app = self._msal_app()
            accounts = app.get_accounts(username=self.username)
            result = app.acquire_token_silent(wanted, account=accounts[0]) if accounts else None
            if not result:
                with warnings.catch_warnings():
                    # MSAL's DeprecationWarning repeats the WARNING logged above; don't let it
                    # crash runs that turn Python warnings into errors.
                    warnings.simplefilter("ignore", DeprecationWarning)
                    result = app.acquire_token_by_username_password(
                        self.username,
                        self._password().reveal(),
                        scopes=wanted,
                        claims_challenge=claims,
                    )
        if "error" in result:
            explanation = explain(result)
            raise AuthError(
                f"identity {self.name!r} ({self.username}) could not sign in with the password "
                "flow: "
                f"{explanation.cause}",
                hint=(
                    "the password flow cannot do MFA; use kind: user with `patwarden login` instead"
                ),
                docs=explanation.anchor,
            )
        # azure-core compares expires_on with time.time(); MSAL's clock, not the run's Clock.
        return AccessToken(
            str(result["access_token"]), int(time.time()) + int(result["expires_in"])
        )

    def close(self) -> None:
        """Nothing to release."""
