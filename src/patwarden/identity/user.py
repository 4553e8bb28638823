"""The rotator: a dedicated Entra user, signed in once (device code or browser), then refreshed.

Built on ``msal.PublicClientApplication`` with a ``SerializableTokenCache`` that patwarden persists
itself through a :class:`~patwarden.identity.cache_store.CacheStore`. Every silent refresh runs
inside the store's lock: load the newest cache, refresh, write back — so concurrent runners never
lose a rolled refresh token. :meth:`UserCredential.get_token` never prompts; when Entra wants a
human it raises :class:`~patwarden.errors.ReloginRequired` with the reason.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TextIO

from patwarden.domain.relogin import ReloginDeadline, relogin_deadline
from patwarden.errors import DOCS, AuthError, ReloginRequired
from patwarden.identity.aadsts import DEVICE_CODE_SESSION, explain
from patwarden.identity.account import AccountRecord, CacheEnvelope
from patwarden.identity.cache_store import CacheStore
from patwarden.identity.http import entra_call, msal_session
from patwarden.identity.scopes import PAT_SCOPES
from patwarden.identity.signin import (
    BROWSER,
    DEVICE_CODE,
    account_record,
    interactive_result,
    login_failure,
)

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken

    from patwarden.identity.browser import BrowserOptions

log = logging.getLogger(__name__)
NOT_LOGGED_IN_DOCS = f"{DOCS}/identities.md#not-logged-in"
_REFRESH_MARGIN = 300  # seconds: reuse an in-memory access token only while it has this much left


@dataclass(frozen=True, kw_only=True)
class UserSettings:
    """Everything the rotator credential needs from config (no secrets)."""

    name: str
    client_id: str
    tenant_id: str
    authority_host: str
    ca_bundle: str | None  # ``azure.ca_bundle``: CAs trusted besides the default ones
    instance_discovery: bool  # False for hosts MSAL does not know (emulator, private cloud)
    expected_username: str | None = None
    sign_in_frequency: timedelta | None = None

    @property
    def authority(self) -> str:
        """``<authority_host>/<tenant>``."""
        return f"{self.authority_host.rstrip('/')}/{self.tenant_id}"

    @property
    def verify(self) -> str | bool:
        """MSAL's ``verify``: True, or a PEM file of the default CAs plus ``ca_bundle`` — never
        False. Made when first signing in, not before (``status`` never signs in).

        Raises:
            ConfigError: the bundle cannot be read or holds no usable certificate.
        """
        from patwarden.tls import requests_verify

        return requests_verify(self.ca_bundle)


class UserCredential:
    """An azure-core ``TokenCredential`` for the rotator user, plus login, logout and status."""

    def __init__(
        self,
        *,
        settings: UserSettings,
        open_store: Callable[[bool], CacheStore],
        clock: Callable[[], datetime],
    ) -> None:
        """``open_store(create_key)`` builds the cache store (``create_key`` only for login).

        *clock* is the run's time source (login and renewal stamps, the re-login countdown). The
        access-token and device-code expiry arithmetic uses the ``time`` module's Unix time instead:
        it must agree with MSAL's own clock, which computes ``expires_in``/``expires_at`` with it.
        """
        self.settings = settings
        self._open_store = open_store
        self._store: CacheStore | None = None
        self._clock = clock
        self._lock = threading.RLock()
        self._app: Any = None
        self._cache: Any = None
        self._tokens: dict[tuple[str, ...], AccessToken] = {}
        # Why the last silent sign-in failed (None once one worked): a run that fails because the
        # rotator's sessions were revoked mid-run exits with this error's code, not "all failed".
        self.refusal: AuthError | None = None

    def __repr__(self) -> str:
        settings = self.settings
        return f"UserCredential(identity={settings.name!r}, client_id={settings.client_id!r})"

    # --- plumbing -------------------------------------------------------------------------------

    @property
    def store(self) -> CacheStore:
        """The cache store (built on first use, without creating keys)."""
        if self._store is None:
            self._store = self._open_store(False)
        return self._store

    def _msal_app(self) -> Any:
        if self._app is None:
            import msal

            self._cache = msal.SerializableTokenCache()
            with entra_call(authority=self.settings.authority, action="discover the authority"):
                self._app = msal.PublicClientApplication(
                    self.settings.client_id,
                    authority=self.settings.authority,
                    token_cache=self._cache,
                    http_client=msal_session(verify=self.settings.verify),
                    instance_discovery=None if self.settings.instance_discovery else False,
                    # CAE-capable: Azure DevOps may answer a revoked session's still-valid token
                    # with a claims challenge, which the transport retries once.
                    client_capabilities=["CP1"],
                )
        return self._app

    def _load(self, store: CacheStore) -> AccountRecord:
        envelope = store.load()
        if envelope is None or envelope.account is None:
            raise ReloginRequired(
                f"identity {self.settings.name!r} is not logged in (no token cache in "
                f"{store.description})",
                hint=(
                    f"run `patwarden login --identity {self.settings.name}` once, as the "
                    "rotator user"
                ),
                docs=NOT_LOGGED_IN_DOCS,
            )
        record = envelope.account
        if (
            record.client_id != self.settings.client_id
            or record.authority != self.settings.authority
        ):
            raise ReloginRequired(
                f"the token cache of identity {self.settings.name!r} was created for another app "
                f"registration or tenant ({record.client_id} at {record.authority})",
                hint=(
                    f"run `patwarden login --identity {self.settings.name}` again with the "
                    "current config"
                ),
                docs=NOT_LOGGED_IN_DOCS,
            )
        self._msal_app()
        self._cache.deserialize(envelope.msal_cache)
        return record

    def _refresh_token_fingerprints(self) -> frozenset[str]:
        entries = self._cache.search(self._cache.CredentialType.REFRESH_TOKEN)
        return frozenset(
            hashlib.sha256(str(entry.get("secret", "")).encode()).hexdigest() for entry in entries
        )

    # --- TokenCredential ------------------------------------------------------------------------

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """An access token for ``scopes`` (default: PAT scopes), refreshed silently; never prompts.

        Raises:
            ReloginRequired: not logged in, or Entra wants an interactive sign-in (says why).
            AuthError: Entra unreachable, TLS failure, or a configuration problem (app, tenant).
        """
        wanted = tuple(scopes) or PAT_SCOPES
        with self._lock:
            try:
                token = self._get_token(wanted, claims)
            except AuthError as exc:
                self.refusal = exc
                raise
            self.refusal = None
            return token

    def _get_token(self, wanted: tuple[str, ...], claims: str | None) -> AccessToken:
        from azure.core.credentials import AccessToken

        with self._lock:
            cached = self._tokens.get(wanted)
            if (
                cached is not None
                and claims is None
                # MSAL expiry math: against MSAL's clock (time.time), not the run's Clock.
                and cached.expires_on - time.time() > _REFRESH_MARGIN
            ):
                return cached
            store = self.store
            with store.locked():
                record = self._load(store)
                account = self._account(record)
                before = self._refresh_token_fingerprints()
                with entra_call(authority=self.settings.authority, action="refresh a token"):
                    result = self._msal_app().acquire_token_silent_with_error(
                        list(wanted), account=account, claims_challenge=claims
                    )
                if result is None:
                    raise ReloginRequired(
                        f"the token cache of identity {self.settings.name!r} holds no refresh "
                        "token",
                        hint=f"run `patwarden login --identity {self.settings.name}` again",
                        docs=NOT_LOGGED_IN_DOCS,
                    )
                if "error" in result:
                    raise self._refusal(result, record)
                if self._cache.has_state_changed:
                    renewed = self._refresh_token_fingerprints() != before
                    if renewed:
                        record = replace(record, last_renewed_at=self._clock())
                    store.save(CacheEnvelope(account=record, msal_cache=self._cache.serialize()))
            # azure-core compares expires_on with time.time(); MSAL's clock, not the run's Clock.
            token = AccessToken(
                str(result["access_token"]), int(time.time()) + int(result["expires_in"])
            )
            self._tokens[wanted] = token
            return token

    def _account(self, record: AccountRecord) -> Any:
        for account in self._msal_app().get_accounts():
            if account.get("home_account_id") == record.home_account_id:
                return account
        raise ReloginRequired(
            f"the token cache of identity {self.settings.name!r} does not contain account "
            f"{record.username}",
            hint=f"run `patwarden login --identity {self.settings.name}` again",
            docs=NOT_LOGGED_IN_DOCS,
        )

    def _refusal(self, result: dict[str, Any], record: AccountRecord) -> AuthError:
        context = DEVICE_CODE_SESSION if record.sign_in_method == DEVICE_CODE else None
        explanation = explain(result, context=context)
        fix = explanation.fix.format(identity=self.settings.name)
        message = (
            f"identity {self.settings.name!r} ({record.username}) cannot get a token silently: "
            f"{explanation.cause}"
        )
        if explanation.needs_login:
            return ReloginRequired(message, hint=fix, docs=explanation.anchor)
        return AuthError(message, hint=fix, docs=explanation.anchor)

    def close(self) -> None:
        """Drop in-memory tokens (nothing else to release)."""
        self._tokens.clear()

    # --- login / logout / status ----------------------------------------------------------------

    def login(
        self,
        *,
        out: TextIO = sys.stderr,
        timeout: float | None = None,
        browser: BrowserOptions | None = None,
        store: CacheStore | None = None,
    ) -> AccountRecord:
        """Sign the rotator in interactively and persist the cache and account record.

        Device code by default: prints Entra's instructions (URL and code) to ``out``. With
        *browser*, the authorization code flow with PKCE: prints the sign-in URL, opens the system
        browser unless told not to, and waits for the redirect to a loopback port. Either way it
        waits until the sign-in completes, fails, or ``timeout`` seconds pass. *store* replaces the
        configured cache store (``login --export`` writes a sealed file instead).

        Raises:
            AuthError: the sign-in was declined or expired, the account is not the expected one, or
                Entra refused (consent, app not found, Conditional Access …).
        """
        settings = self.settings
        with self._lock:
            target = store or self._open_store(True)
            self._msal_app()
            self._cache.deserialize("{}")
            self._tokens.clear()
            result = interactive_result(
                self._app,
                authority=settings.authority,
                scopes=PAT_SCOPES,
                login_hint=settings.expected_username,
                browser=browser,
                out=out,
                timeout=timeout,
                name=settings.name,
            )
            if "error" in result or "access_token" not in result:
                raise login_failure(settings.name, result)
            record = account_record(
                self._app,
                result,
                name=settings.name,
                client_id=settings.client_id,
                authority=settings.authority,
                tenant_id=settings.tenant_id,
                expected_username=settings.expected_username,
                method=BROWSER if browser is not None else DEVICE_CODE,
                now=self._clock(),
            )
            with target.locked():
                target.save(CacheEnvelope(account=record, msal_cache=self._cache.serialize()))
            if store is None:
                self._store = target
                self._tokens[PAT_SCOPES] = _access_token(result)
            return record

    def logout(self) -> bool:
        """Remove the persisted cache and account record; return whether there was one."""
        with self._lock:
            self._tokens.clear()
            store = self.store
            with store.locked():
                return store.delete()

    def account(self) -> AccountRecord | None:
        """The stored account record, or None when not logged in (reads the store, no network)."""
        with self._lock:
            envelope = self.store.load()
        return envelope.account if envelope else None

    def relogin_deadline(self) -> ReloginDeadline | None:
        """When a new interactive login will be needed (None when not logged in)."""
        record = self.account()
        if record is None:
            return None
        return relogin_deadline(
            last_renewed=record.last_renewed_at,
            last_interactive_login=record.logged_in_at,
            sign_in_frequency=self.settings.sign_in_frequency,
        )

    def days_until_relogin(self, now: datetime | None = None) -> float | None:
        """Days until ``patwarden login`` is needed again (negative: overdue; None: logged out)."""
        deadline = self.relogin_deadline()
        return None if deadline is None else deadline.days_left(now or self._clock())


def _access_token(result: dict[str, Any]) -> AccessToken:
    from azure.core.credentials import AccessToken

    # azure-core compares expires_on with time.time(); MSAL's clock, not the run's Clock.
    return AccessToken(
        str(result["access_token"]), int(time.time()) + int(result.get("expires_in", 0))
    )
