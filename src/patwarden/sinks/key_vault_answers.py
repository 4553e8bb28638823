"""What Key Vault's secrets API answers, read: versions, typed errors, and 401 challenges.

The parsing half of :mod:`patwarden.sinks.key_vault_client`: a ``SecretBundle`` or
``SecretItem`` becomes a :class:`SecretVersionInfo`, an error answer the :class:`VaultError`
subclass of its status, and a ``WWW-Authenticate`` challenge what to fetch a new token with.
Server text in messages is shortened and stripped of anything that looks like a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from patwarden.azdo.cae import claims_challenge
from patwarden.azdo.errors import sanitize_server_text
from patwarden.secret import Secret

__all__ = [
    "SecretVersionInfo",
    "VaultAuthFailed",
    "VaultError",
    "VaultForbidden",
    "VaultNoAnswer",
    "VaultNotFound",
    "challenge_options",
    "document_of",
    "version_info",
]


class VaultError(Exception):
    """Key Vault refused a request; ``status`` is its HTTP status (0: no answer), ``code`` its
    error code (``SecretNotFound``, ``Forbidden``, ...). The message is the vault's, shortened and
    stripped of anything that looks like a secret."""

    def __init__(self, message: str, *, status: int = 0, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class VaultNotFound(VaultError):
    """HTTP 404: the secret (or the version) does not exist."""


class VaultForbidden(VaultError):
    """HTTP 403: the identity may not do this, or the version is disabled (:attr:`disabled`)."""

    def __init__(
        self, message: str, *, status: int = 403, code: str | None = None, inner: str | None = None
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.inner = inner

    @property
    def disabled(self) -> bool:
        """Whether the vault refused because the version is disabled (not a permission)."""
        return self.inner == "SecretDisabled" or "disabled" in self.message.lower()


class VaultAuthFailed(VaultError):
    """No token could be had, or the vault refused every token (HTTP 401)."""


class VaultNoAnswer(VaultError):
    """No usable answer after every try. ``sent``: the request may have reached the vault (it
    may have acted on it); False when no connection was ever opened."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


@dataclass(frozen=True, kw_only=True)
class SecretVersionInfo:
    """One version of a secret as Key Vault describes it (``value`` only when it was read)."""

    name: str
    version: str
    value: Secret | None = field(default=None, repr=False)
    content_type: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    enabled: bool = True
    expires_on: datetime | None = None


def challenge_options(response: httpx.Response) -> dict[str, str] | None:
    """What to fetch a new token with after a 401: CAE claims, or the tenant the challenge names
    (the SDK's rule, contract §8.1); None when the challenge offers nothing new."""
    claims = claims_challenge(response)
    if claims is not None:
        return {"claims": claims}
    for header in response.headers.get_list("www-authenticate"):
        for part in header.replace("Bearer ", "", 1).split(","):
            key, _, value = part.strip().partition("=")
            if key.strip().lower() in ("authorization", "authorization_uri"):
                tenant = value.strip().strip('"').rstrip("/").rsplit("/", 1)[-1]
                if tenant:
                    return {"tenant_id": tenant}
    return None


def document_of(response: httpx.Response) -> dict[str, Any]:
    """The JSON document of a successful answer.

    Raises:
        VaultError: an error answer (the subclass for its status).
        VaultNoAnswer: a success whose body is not a JSON object (``sent``: it may have acted).
    """
    status = response.status_code
    try:
        document = response.json() if response.content else {}
    except ValueError:
        document = None
    if 200 <= status < 300:
        if not isinstance(document, dict):
            raise VaultNoAnswer(
                f"Key Vault answered HTTP {status} with a body that is not a JSON object",
                sent=True,
            )
        return document
    error = document.get("error") if isinstance(document, dict) else None
    error = error if isinstance(error, dict) else {}
    code = error.get("code") if isinstance(error.get("code"), str) else None
    code = code or response.headers.get("x-ms-error-code")
    inner = error.get("innererror")
    inner_code = inner.get("code") if isinstance(inner, dict) else None
    detail = sanitize_server_text(str(error.get("message") or response.reason_phrase or ""))
    message = f"HTTP {status}" + (f" {code}" if code else "") + (f": {detail}" if detail else "")
    if status == 404:
        raise VaultNotFound(message, status=status, code=code)
    if status == 403:
        raise VaultForbidden(
            message, code=code, inner=inner_code if isinstance(inner_code, str) else None
        )
    if status == 401:
        raise VaultAuthFailed(message, status=status, code=code)
    raise VaultError(message, status=status, code=code)


def version_info(document: Mapping[str, Any], *, with_value: bool) -> SecretVersionInfo:
    """A :class:`SecretVersionInfo` from a ``SecretBundle`` or ``SecretItem``.

    Raises:
        VaultNoAnswer: the document has no ``id`` naming a version (a malformed answer).
    """
    ident = document.get("id")
    parts = ident.split("/secrets/", 1)[-1].split("/") if isinstance(ident, str) else []
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise VaultNoAnswer("Key Vault answered without the version's id", sent=True)
    attributes = document.get("attributes")
    attributes = attributes if isinstance(attributes, dict) else {}
    value = document.get("value") if with_value else None
    tags = document.get("tags")
    expires = attributes.get("exp")
    content_type = document.get("contentType")
    return SecretVersionInfo(
        name=parts[0],
        version=parts[1],
        value=Secret(value) if isinstance(value, str) else None,
        content_type=content_type if isinstance(content_type, str) else None,
        tags={str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {},
        enabled=attributes.get("enabled") is not False,
        expires_on=(
            datetime.fromtimestamp(expires, UTC) if isinstance(expires, int | float) else None
        ),
    )
