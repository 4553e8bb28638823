"""The rotator: a dedicated Entra user, signed in once by device code, then refreshed silently.

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
from patwarden.identity.aadsts import explain
from patwarden.identity.account import AccountRecord, CacheEnvelope
from patwarden.identity.cache_store import CacheStore
from patwarden.identity.http import entra_call, msal_session
from patwarden.identity.scopes import PAT_SCOPES

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken

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
    verify: str | bool  # CA bundle path, or True for the system store — never False
    instance_discovery: bool  # False for hosts MSAL does not know (emulator, private cloud)
    expected_username: str | None = None
    sign_in_frequency: timedelta | None = None

    @property
    def authority(self) -> str:
        """``<authority_host>/<tenant>``."""
        return f"{self.authority_host.rstrip('/')}/{self.tenant_id}"


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
        from azure.core.credentials import AccessToken

        wanted = tuple(scopes) or PAT_SCOPES
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
        explanation = explain(result)
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

    def login(self, *, out: TextIO = sys.stderr, timeout: float | None = None) -> AccountRecord:
        """Sign the rotator in with the device-code flow and persist the cache and account record.

        Prints Entra's instructions (URL and code) to ``out`` and waits until the user completes the
        sign-in, the code expires, or ``timeout`` seconds pass.

        Raises:
            AuthError: the sign-in was declined or expired, the account is not the expected one, or
                Entra refused (consent, app not found, Conditional Access …).
        """
        with self._lock:
            store = self._open_store(True)
            self._msal_app()
            self._cache.deserialize("{}")
            self._tokens.clear()
            with entra_call(
                authority=self.settings.authority, action="start a device-code sign-in"
            ):
                flow = self._app.initiate_device_flow(scopes=list(PAT_SCOPES))
            if "user_code" not in flow:
                raise self._login_failure(flow)
            print(flow["message"], file=out, flush=True)
            if timeout is not None:
                # MSAL polls until expires_at by time.time(), so the deadline uses that clock.
                flow["expires_at"] = min(float(flow.get("expires_at", 0)), time.time() + timeout)
            with entra_call(
                authority=self.settings.authority, action="complete the device-code sign-in"
            ):
                result = self._app.acquire_token_by_device_flow(flow)
            if "error" in result or "access_token" not in result:
                raise self._login_failure(result)
            record = self._record_from(result)
            with store.locked():
                store.save(CacheEnvelope(account=record, msal_cache=self._cache.serialize()))
            self._store = store
            self._tokens[PAT_SCOPES] = _access_token(result)
            return record

    def _login_failure(self, result: dict[str, Any]) -> AuthError:
        error = str(result.get("error", "unknown_error"))
        if error in ("authorization_declined", "expired_token", "bad_verification_code"):
            reason = {
                "authorization_declined": "the sign-in was declined in the browser",
                "expired_token": "the code expired before the sign-in was completed",
                "bad_verification_code": "Entra did not recognise the device code",
            }[error]
            return AuthError(
                f"login of identity {self.settings.name!r} failed: {reason}",
                hint=(
                    f"run `patwarden login --identity {self.settings.name}` again and finish "
                    "within the time shown"
                ),
            )
        explanation = explain(result)
        return AuthError(
            f"login of identity {self.settings.name!r} failed: {explanation.cause}",
            hint=explanation.fix.format(identity=self.settings.name),
            docs=explanation.anchor,
        )

    def _record_from(self, result: dict[str, Any]) -> AccountRecord:
        claims = result.get("id_token_claims") or {}
        username = str(claims.get("preferred_username") or claims.get("upn") or "")
        accounts = self._app.get_accounts(username=username or None) or self._app.get_accounts()
        if not accounts:
            raise AuthError(
                f"login of identity {self.settings.name!r}: Entra returned no account (no "
                "id_token/client_info)",
                hint=(
                    "check that the app registration is a public client with 'Allow public "
                    "client flows' on"
                ),
                docs=f"{DOCS}/identities.md#one-time-entra-setup",
            )
        account = accounts[0]
        username = username or str(account.get("username", ""))
        expected = self.settings.expected_username
        if expected and username.lower() != expected.lower():
            raise AuthError(
                f"login of identity {self.settings.name!r} signed in as {username}, but the "
                f"config expects {expected}",
                hint=(
                    f"run `patwarden login --identity {self.settings.name}` again and sign in "
                    f"as {expected} (use a private browser window so your own account is not "
                    "picked)"
                ),
            )
        now = self._clock()
        return AccountRecord(
            home_account_id=str(account["home_account_id"]),
            username=username,
            tenant_id=str(claims.get("tid") or self.settings.tenant_id),
            client_id=self.settings.client_id,
            authority=self.settings.authority,
            logged_in_at=now,
            last_renewed_at=now,
        )

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
