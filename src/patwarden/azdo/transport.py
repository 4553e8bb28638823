"""HTTP plumbing shared by every Azure DevOps call: auth, retries, rate limits, error mapping.

Every answer is read as a stream and must fit in ``MAX_RESPONSE_BYTES`` and arrive within a
deadline of a few read timeouts: an endless or dripping body is a transport error like a timeout,
not a hang or a memory blow-up.

Retry rule (why a PAT create is special): GET, PUT, DELETE and the Token Admin revocation POST are
idempotent, so they are retried on timeouts, connection errors, 429 and 5xx with jittered
exponential backoff, a bounded number of times. A PAT *create* is not idempotent: if the request
may have reached the service (read timeout, reset after sending, a 500/502/504 answer) resending
it could mint a second PAT, so :class:`RequestOutcomeUnknown` is raised instead and the caller
looks the PAT up by display name. A create is retried only when the service clearly refused it
before acting: a connection that never opened, HTTP 429 (throttled before processing, contract
§5) and 503 with ``Retry-After``.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from patwarden import __version__
from patwarden.azdo import validation
from patwarden.azdo.cae import claims_to_retry
from patwarden.azdo.constants import DEFAULT_AZURE_DEVOPS_URL, DEFAULT_VSSPS_URL
from patwarden.azdo.errors import AzdoConnectionError, RequestOutcomeUnknown, sanitize_server_text
from patwarden.azdo.ratelimit import RateLimiter
from patwarden.azdo.responses import error_for_response, sign_in_problem
from patwarden.errors import AuthError, ConfigError
from patwarden.http_answers import NOT_SENT, RETRYABLE, Sender
from patwarden.secret import Secret
from patwarden.tls import ssl_context

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
MAX_RESPONSE_BYTES = 32 << 20  # the largest real answer (a page of 100 PATs) is ~100 KB
# Each read has its own timeout, so a server that drips a byte at a time never trips it: the
# whole answer must arrive within this many read timeouts (2 minutes by default).
_DEADLINE_READS = 4
_FALLBACK_DEADLINE = 120.0


_NOT_RETRYABLE_5XX = frozenset({501, 505})


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently to retry.

    *attempts* counts the first try. Backoff before retry *n* is ``base_delay * 2**(n-1)`` capped
    at *max_delay*, times a random factor in [0.5, 1]. A server-advised wait (``Retry-After``,
    ``X-RateLimit-Reset``) replaces the backoff; one longer than *max_advised_wait* fails fast.
    """

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_advised_wait: float = 300.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base_delay < 0 or self.max_delay < 0:
            raise ConfigError(
                f"Invalid retry policy {self!r}: attempts must be >= 1 and delays >= 0.",
                hint="Use the defaults unless you have a reason not to.",
            )

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Return the jittered delay before retry number *attempt* (1 for the first retry)."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return ceiling * (0.5 + rng.random() / 2)


@dataclass(frozen=True, kw_only=True)
class ServiceUrls:
    """Base URLs of Azure DevOps (real or emulated); both must be https."""

    azure_devops_url: str = DEFAULT_AZURE_DEVOPS_URL
    vssps_url: str = DEFAULT_VSSPS_URL

    def __post_init__(self) -> None:
        for name in ("azure_devops_url", "vssps_url"):
            normalized = validation.base_url(getattr(self, name), setting=name)
            object.__setattr__(self, name, normalized)


@dataclass(frozen=True)
class Bearer:
    """Authenticate with an Entra access token for *scopes*, fetched for every request."""

    scopes: tuple[str, ...]


@dataclass(frozen=True)
class BasicPat:
    """Authenticate with a PAT over Basic auth (``base64(":" + pat)``, contract §6)."""

    pat: Secret = field(repr=False)


Auth = Bearer | BasicPat


def _query_value(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


class AzdoTransport:
    """Sends requests to Azure DevOps for one identity. Thread-safe; share it across workers.

    *credential* is any ``azure.core.credentials.TokenCredential``; a token is requested for every
    request (credentials cache tokens themselves). *http_transport* replaces the network (tests).
    """

    def __init__(
        self,
        *,
        credential: TokenCredential | None,
        ca_bundle: str | os.PathLike[str] | None = None,
        retry: RetryPolicy | None = None,
        rate_limiter: RateLimiter | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        http_transport: httpx.BaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._credential = credential
        self._retry = retry or RetryPolicy()
        self._limiter = rate_limiter or RateLimiter()
        self._rng = rng or random.Random()  # noqa: S311  # backoff jitter, not cryptography
        self._deadline = timeout.read * _DEADLINE_READS if timeout.read else _FALLBACK_DEADLINE
        # A CA bundle (as an SSLContext, httpx 0.28) or True (certifi/SSL_CERT_FILE); never False.
        # Redirects are never followed (a 302 to a sign-in page is an answer, contract §6).
        self._sender = Sender(
            verify=ssl_context(ca_bundle),
            timeout=timeout,
            transport=http_transport,
            headers={
                "User-Agent": f"patwarden/{__version__}",
                "Accept": "application/json",
                # 401 instead of a 302/203 sign-in page for refused credentials (contract §6).
                "X-TFS-FedAuthRedirect": "Suppress",
            },
        )

    @property
    def rate_limiter(self) -> RateLimiter:
        """The limiter shared by every request of this transport's identity."""
        return self._limiter

    def close(self) -> None:
        """Close pooled connections."""
        self._sender.close()

    def send(
        self,
        method: str,
        url: str,
        *,
        action: str,
        api_version: str,
        auth: Auth,
        params: Mapping[str, object] | None = None,
        body: Any = None,
        idempotent: bool = True,
        check: bool = True,
    ) -> httpx.Response:
        """Send one logical request, retrying as the module docstring describes.

        *action* completes "refused to …" in error messages. With *check* False, non-retryable
        error responses (401, 203, 302, 404…) are returned instead of raised.

        Raises:
            AzdoConnectionError: no answer after every attempt, or a TLS/protocol failure.
            RequestOutcomeUnknown: a non-idempotent request may have taken effect.
            AzdoRateLimited: still throttled after every attempt, or asked to wait too long.
            AuthError: no credential, or the credential could not provide a token.
            PatwardenError: the mapped error for a failed response (see ``responses``).
        """
        query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        query["api-version"] = api_version
        content = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        attempt = 0
        claims: str | None = None  # set once Azure DevOps answered a CAE claims challenge
        while True:
            attempt += 1
            ticket = self._limiter.acquire(max_wait=self._retry.max_advised_wait)
            headers = self._auth_headers(auth, action=action, claims=claims)
            if content is not None:
                headers["Content-Type"] = "application/json"
            try:
                response = self._exchange(
                    method, url, params=query, content=content, headers=headers
                )
            except httpx.TransportError as err:
                self._on_transport_error(err, attempt=attempt, action=action, idempotent=idempotent)
                continue
            logger.debug("%s %s -> %s", method, response.request.url.path, response.status_code)
            if isinstance(auth, Bearer) and (retry := claims_to_retry(response, claims, action)):
                claims, attempt = retry, attempt - 1  # CAE: refused before acting; resent once
                continue
            advised = self._limiter.observe(
                response.headers, ticket=ticket, status=response.status_code
            )
            if attempt < self._retry.attempts and self._should_retry(response, idempotent):
                self._back_off(response, advised, attempt=attempt, action=action)
                continue
            return self._finish(
                response, attempt=attempt, action=action, idempotent=idempotent, check=check
            )

    def _exchange(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str],
        content: bytes | None,
        headers: dict[str, str],
    ) -> httpx.Response:
        """Send one request and read its whole answer, at most ``MAX_RESPONSE_BYTES`` in time.

        Raises:
            httpx.TransportError: no (complete) answer, including an answer too large or too
                slow (:mod:`patwarden.http_answers`).
        """
        request = self._sender.build(method, url, params=params, content=content, headers=headers)
        return self._sender.send(request, max_bytes=MAX_RESPONSE_BYTES, deadline=self._deadline)

    def _finish(
        self, response: httpx.Response, *, attempt: int, action: str, idempotent: bool, check: bool
    ) -> httpx.Response:
        status = response.status_code
        if not idempotent and status >= 500 and not _refused_before_acting(response):
            raise RequestOutcomeUnknown(
                f"The request to {action} got HTTP {status}; the service may have acted on it. "
                "It was not resent because it is not idempotent.",
                status=status,
                hint="Check whether it took effect before trying again.",
            )
        if check and (not response.is_success or sign_in_problem(response) is not None):
            raise error_for_response(response, action=action, attempts=attempt)
        if not check and (status == 429 or status >= 500):
            raise error_for_response(response, action=action, attempts=attempt)
        return response

    def _should_retry(self, response: httpx.Response, idempotent: bool) -> bool:
        status = response.status_code
        if status == 429:
            return True
        if idempotent:
            return status >= 500 and status not in _NOT_RETRYABLE_5XX
        return _refused_before_acting(response)

    def _back_off(
        self, response: httpx.Response, advised: float | None, *, attempt: int, action: str
    ) -> None:
        delay = advised
        if delay is None:
            delay = self._retry.backoff(attempt, self._rng)
            if response.status_code == 429:
                self._limiter.pause_for(delay)  # throttling concerns every request of the identity
        logger.warning(
            "Azure DevOps answered HTTP %s to %s; retry %d of %d in %.1f s",
            response.status_code,
            action,
            attempt,
            self._retry.attempts - 1,
            delay,
        )
        if advised is None and response.status_code != 429:
            self._limiter.sleep(delay)
        # Otherwise the limiter holds the pause and the next wait() sits it out.

    def _on_transport_error(
        self, err: httpx.TransportError, *, attempt: int, action: str, idempotent: bool
    ) -> None:
        reason = f"{type(err).__name__}: {sanitize_server_text(str(err), limit=200) or 'no detail'}"
        if "CERTIFICATE_VERIFY_FAILED" in str(err):
            raise AzdoConnectionError(
                f"Could not {action}: the server's TLS certificate was not trusted ({reason}).",
                hint="If Azure DevOps is reached through a private CA or the emulator, set "
                "ca_bundle to its CA certificate (PEM). TLS verification is never turned off.",
            ) from None
        if not isinstance(err, RETRYABLE):
            raise AzdoConnectionError(
                f"Could not {action}: {reason}.",
                hint="Check the base URLs and proxy settings in the configuration.",
            ) from None
        if not idempotent and not isinstance(err, NOT_SENT):
            raise RequestOutcomeUnknown(
                f"The request to {action} was sent but no answer arrived ({reason}); the service "
                "may have acted on it. It was not resent because it is not idempotent.",
                hint="Check whether it took effect before trying again.",
            ) from None
        if attempt >= self._retry.attempts:
            raise AzdoConnectionError(
                f"Could not {action}: no answer from Azure DevOps after {attempt} attempts "
                f"({reason}).",
                hint="Check network access to Azure DevOps, proxy settings and the base URLs.",
            ) from None
        delay = self._retry.backoff(attempt, self._rng)
        logger.warning(
            "No answer from Azure DevOps to %s (%s); retry %d of %d in %.1f s",
            action,
            type(err).__name__,
            attempt,
            self._retry.attempts - 1,
            delay,
        )
        self._limiter.sleep(delay)

    def _auth_headers(self, auth: Auth, *, action: str, claims: str | None) -> dict[str, str]:
        if isinstance(auth, BasicPat):
            userpass = base64.b64encode(b":" + auth.pat.reveal().encode()).decode()
            return {"Authorization": f"Basic {userpass}"}
        if self._credential is None:
            raise ConfigError(
                f"Cannot {action}: no Entra credential was configured for this Azure DevOps "
                "client.",
                hint="Configure an identity for this operation (see `identities` in the config).",
            )
        from azure.core.exceptions import ClientAuthenticationError

        try:
            token = (
                self._credential.get_token(*auth.scopes, claims=claims)
                if claims is not None
                else self._credential.get_token(*auth.scopes)
            )
        except ClientAuthenticationError as err:
            first_line = (str(err.message or err).splitlines() or [""])[0]
            raise AuthError(
                f"Could not get an Entra access token (scopes {' '.join(auth.scopes)}) to "
                f"{action}: {sanitize_server_text(first_line)}",
                hint="Run `patwarden doctor`; for a user identity run `patwarden login`.",
            ) from None
        return {"Authorization": f"Bearer {token.token}"}


def _refused_before_acting(response: httpx.Response) -> bool:
    """True for answers that prove the service did not act: 429, and 503 with Retry-After."""
    status = response.status_code
    return status == 429 or (status == 503 and "retry-after" in response.headers)
