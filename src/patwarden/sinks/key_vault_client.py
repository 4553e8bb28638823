"""Azure Key Vault's secrets API over httpx: the calls the ``key_vault`` sink makes, nothing more.

Why not ``azure-keyvault-secrets``: its pipeline (azure-core's policies over requests) costs about
1.6 ms of CPU per request on the benchmark machine against 0.8 ms for the same request over
httpx, and a rotation makes four Key Vault requests (docs/performance.md). The protocol is small
and documented (contract §8, REST spec ``Microsoft.KeyVault/stable/7.5/secrets.json``): set a
secret (a new version), get a version, update a version's attributes and tags, list versions
(paged by ``nextLink``). What is stored is exactly what the SDK stores, so consumers reading with
``SecretClient`` (or anything else) see the same versions (tests/sinks/test_key_vault.py reads
them back with the SDK).

**Authentication.** A bearer token for one scope, fixed when the client is built
(:func:`patwarden.identity.keyvault.vault_scope`): never the scope a vault's challenge names, so a
fake vault cannot obtain a token for another audience. The SDK sends its first request without a
token to learn the challenge; with the scope pinned only the tenant could come from it, so the
token goes with the first request, and a 401 whose challenge names another tenant is resent once
with a token for that tenant (as the SDK does), a continuous-access-evaluation claims challenge
once with the claims. A token is reused until five minutes before it expires.

**Retries** (as the SDK's defaults, fewer of them): a request that got no answer, or HTTP 408,
429, 500, 502, 503 or 504, is resent up to :data:`RETRY_TOTAL` times with jittered exponential
backoff, or after ``Retry-After`` when the vault says so (at most :data:`MAX_RETRY_AFTER` s;
longer fails now). Every request is idempotent in effect except a set, whose repeat stores the
same value and tags again as one more version.

**Bounds.** Every answer is read whole within :data:`MAX_ANSWER_BYTES` and
:data:`DEADLINE_READS` read timeouts (:mod:`patwarden.http_answers`).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from patwarden import __version__
from patwarden.azdo.errors import sanitize_server_text
from patwarden.azdo.ratelimit import retry_after
from patwarden.azdo.transport import RetryPolicy
from patwarden.http_answers import NOT_SENT, RETRYABLE, Sender
from patwarden.secret import Secret
from patwarden.sinks.key_vault_answers import (
    SecretVersionInfo,
    VaultAuthFailed,
    VaultError,
    VaultNoAnswer,
    challenge_options,
    document_of,
    version_info,
)

if TYPE_CHECKING:
    import ssl

    from azure.core.credentials import AccessToken, TokenCredential

__all__ = ["API_VERSION", "KeyVaultSecrets"]  # its answers and errors: key_vault_answers

logger = logging.getLogger(__name__)

API_VERSION = "7.5"
MAX_ANSWER_BYTES = 32 << 20  # a Key Vault answer is a few kilobytes
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
DEADLINE_READS = 4  # the whole answer within 4 read timeouts
RETRY_TOTAL = 3  # retries after the first try
MAX_RETRY_AFTER = 60.0
BACKOFF_BASE = 0.8  # azure-core's backoff factor
BACKOFF_MAX = 20.0
_BACKOFF = RetryPolicy(attempts=RETRY_TOTAL + 1, base_delay=BACKOFF_BASE, max_delay=BACKOFF_MAX)
TOKEN_REFRESH_MARGIN = 300  # seconds before expiry a cached token is replaced
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_PAGE_SIZE = 25  # the API's largest page


class KeyVaultSecrets:
    """A client of one vault's secrets for one identity. Thread-safe; share it across workers.

    *credential* is an azure-identity ``TokenCredential``; tokens are only ever asked for
    *scope*. *verify* is what httpx verifies the vault with (an ``SSLContext`` trusting a CA
    bundle, or True); never False. *transport* replaces the connection handling (default:
    connections per thread, :class:`~patwarden.http_answers.PerThreadTransport`).
    """

    def __init__(
        self,
        vault_url: str,
        credential: TokenCredential,
        *,
        scope: str,
        verify: ssl.SSLContext | bool = True,
        transport: httpx.BaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.vault_url = vault_url.rstrip("/")
        self.scope = scope
        self._credential = credential
        self._rng = rng or random.Random()  # noqa: S311  # backoff jitter, not cryptography
        self._lock = threading.Lock()
        self._token: AccessToken | None = None
        self._tenant: str | None = None  # the tenant a challenge named; kept, as the SDK does
        self._sender = Sender(  # redirects are never followed
            verify=verify,
            timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
            transport=transport,
            headers={"User-Agent": f"patwarden/{__version__}", "Accept": "application/json"},
        )

    def __repr__(self) -> str:
        return f"KeyVaultSecrets({self.vault_url!r}, scope={self.scope!r})"

    def close(self) -> None:
        """Close the pooled connections."""
        self._sender.close()

    def warm(self) -> None:
        """Get the bearer token now (kept for the requests to come): a run calls it in the
        background while it signs the rotator in, instead of the first request waiting for it.

        Raises:
            VaultAuthFailed: no token could be had (the first request would fail the same way).
        """
        self._bearer()

    def __enter__(self) -> KeyVaultSecrets:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- operations -------------------------------------------------------------------------

    def set_secret(
        self,
        name: str,
        value: Secret,
        *,
        content_type: str | None = None,
        tags: Mapping[str, str] | None = None,
        expires_on: datetime | None = None,
    ) -> SecretVersionInfo:
        """Store *value* as a new version of *name* (``PUT /secrets/{name}``).

        Raises:
            VaultError: refused, or no answer (:class:`VaultNoAnswer`; the version may exist).
        """
        body: dict[str, Any] = {"value": value.reveal()}
        if content_type is not None:
            body["contentType"] = content_type
        if tags is not None:
            body["tags"] = dict(tags)
        if expires_on is not None:
            body["attributes"] = {"exp": int(expires_on.timestamp())}
        answer = self._call("PUT", f"/secrets/{_segment(name)}", body=body)
        return version_info(answer, with_value=True)

    def get_secret(self, name: str, version: str = "") -> SecretVersionInfo:
        """Read a version of *name* with its value (the newest when *version* is empty).

        Raises:
            VaultNotFound: no such secret or version.
            VaultForbidden: not allowed, or the version is disabled (``disabled``).
            VaultError: any other refusal, or no answer.
        """
        path = f"/secrets/{_segment(name)}/{_segment(version)}"
        return version_info(self._call("GET", path), with_value=True)

    def update_secret(
        self,
        name: str,
        version: str,
        *,
        enabled: bool | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> SecretVersionInfo:
        """Change a version's ``enabled`` attribute and/or replace its tags (``PATCH``).

        Raises:
            VaultError: refused (:class:`VaultNotFound`, :class:`VaultForbidden`) or no answer.
        """
        body: dict[str, Any] = {}
        if enabled is not None:
            body["attributes"] = {"enabled": enabled}
        if tags is not None:
            body["tags"] = dict(tags)
        path = f"/secrets/{_segment(name)}/{_segment(version)}"
        return version_info(self._call("PATCH", path, body=body), with_value=False)

    def list_versions(self, name: str) -> Iterator[SecretVersionInfo]:
        """Every version of *name* (no values), page by page.

        Raises:
            VaultNotFound: no such secret.
            VaultError: any other refusal, no answer, or a ``nextLink`` outside this vault.
        """
        page = self._call(
            "GET", f"/secrets/{_segment(name)}/versions", params={"maxresults": str(_PAGE_SIZE)}
        )
        while True:
            items = page.get("value")
            if not isinstance(items, list):
                raise VaultError("Key Vault answered a version listing without a value list.")
            for item in items:
                if isinstance(item, dict):
                    yield version_info(item, with_value=False)
            next_link = page.get("nextLink")
            if not next_link:
                return
            if not isinstance(next_link, str) or not next_link.startswith(self.vault_url + "/"):
                # The bearer token must never follow a link to another host.
                raise VaultError("Key Vault's nextLink points outside the vault; not followed.")
            page = self._call("GET", next_link, absolute=True)

    # --- plumbing ---------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        absolute: bool = False,
    ) -> dict[str, Any]:
        url = path if absolute else self.vault_url + path
        query = None if absolute else {**(params or {}), "api-version": API_VERSION}
        content = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        retries = 0
        challenged = False
        claims: str | None = None
        while True:
            headers = {"Authorization": f"Bearer {self._bearer(claims)}"}
            if content is not None:
                headers["Content-Type"] = "application/json"
            request = self._sender.build(
                method, url, params=query, content=content, headers=headers
            )
            try:
                response = self._sender.send(
                    request, max_bytes=MAX_ANSWER_BYTES, deadline=READ_TIMEOUT * DEADLINE_READS
                )
            except httpx.TransportError as err:
                self._give_up_or_wait(err, retries)
                retries += 1
                continue
            status = response.status_code
            if status == 401 and not challenged:
                challenge = challenge_options(response)
                if challenge is not None:  # resent once with a new token
                    challenged, claims = True, challenge.get("claims")
                    with self._lock:
                        self._tenant = challenge.get("tenant_id", self._tenant)
                        self._token = None
                    continue
            if status in _RETRY_STATUSES and retries < RETRY_TOTAL:
                delay = self._delay(response, retries)
                if delay is not None:
                    logger.warning(
                        "Key Vault answered HTTP %s; retry %d of %d in %.1f s",
                        status,
                        retries + 1,
                        RETRY_TOTAL,
                        delay,
                    )
                    time.sleep(delay)
                    retries += 1
                    continue
            return document_of(response)

    def _bearer(self, claims: str | None = None) -> str:
        """A token for :attr:`scope` (in the tenant a challenge named, if one did): the cached
        one, or a new one (with CAE *claims*: new, and not cached)."""
        from azure.core.exceptions import ClientAuthenticationError

        now = _wall_clock()
        with self._lock:
            token, tenant = self._token, self._tenant
        if claims is None and token is not None and token.expires_on - TOKEN_REFRESH_MARGIN > now:
            return token.token
        options = {"tenant_id": tenant} if tenant else {}
        if claims is not None:
            options["claims"] = claims
        try:
            fresh = self._credential.get_token(self.scope, enable_cae=True, **options)
        except ClientAuthenticationError as err:
            detail = (str(err.message or err).splitlines() or [""])[0]
            raise VaultAuthFailed(
                f"could not get a Key Vault token ({sanitize_server_text(detail)})"
            ) from None
        if claims is None:
            with self._lock:
                self._token = fresh
        return fresh.token

    def _delay(self, response: httpx.Response, retries: int) -> float | None:
        """Seconds to wait before retrying *response*, or None when the vault asks for too long."""
        advised = retry_after(response.headers, now=_wall_clock())
        if advised is not None:
            advised = max(0.0, advised)
            return advised if advised <= MAX_RETRY_AFTER else None
        return _BACKOFF.backoff(retries + 1, self._rng)

    def _give_up_or_wait(self, err: httpx.TransportError, retries: int) -> None:
        sent = not isinstance(err, NOT_SENT)
        reason = f"{type(err).__name__}: {sanitize_server_text(str(err), limit=200) or 'no detail'}"
        if not isinstance(err, RETRYABLE) or retries >= RETRY_TOTAL:
            tries = "" if not isinstance(err, RETRYABLE) else f" after {retries + 1} tries"
            raise VaultNoAnswer(f"no answer from Key Vault{tries} ({reason})", sent=sent) from None
        delay = _BACKOFF.backoff(retries + 1, self._rng)
        logger.warning(
            "No answer from Key Vault (%s); retry %d of %d in %.1f s",
            type(err).__name__,
            retries + 1,
            RETRY_TOTAL,
            delay,
        )
        time.sleep(delay)


def _wall_clock() -> float:
    """Unix time: what azure-core token expiries and an HTTP-date ``Retry-After`` compare with."""
    return time.time()


def _segment(value: str) -> str:
    return quote(value, safe="")
