"""The ``key_vault`` sink: each write is a new version of an Azure Key Vault secret.

A version carries ``contentType`` (``application/vnd.patwarden.pat``), ``exp`` = the PAT's
``validTo`` (so Key Vault's near-expiry events line up with the PAT) and tags naming the token,
its ``authorizationId``, the operation and the expiry, which is how :meth:`current_version` knows
which PAT the vault serves without any local state. Consumers read the newest version, so
:meth:`restore` re-sets an older value as a new version; a PAT that was revoked gets its versions
tagged by :meth:`mark_revoked`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from patwarden.clock import Clock, SystemClock
from patwarden.errors import SinkError
from patwarden.identity.keyvault import vault_scope
from patwarden.rotation.ports import SinkVersion, SinkWriteMeta
from patwarden.secret import Secret
from patwarden.sinks.errors import (
    SINKS_DOCS,
    SinkReadFailed,
    SinkRefused,
    SinkUnavailable,
    SinkWriteFailed,
)
from patwarden.sinks.key_vault_answers import (
    SecretVersionInfo,
    VaultAuthFailed,
    VaultError,
    VaultForbidden,
    VaultNoAnswer,
    VaultNotFound,
)
from patwarden.sinks.key_vault_client import KeyVaultSecrets
from patwarden.sinks.spec import SinkContext, SinkSpec, parse_spec

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/vnd.patwarden.pat"
SEEN_FOR = 2.0  # seconds a read-back's version answers the next current_version()
TAG_MANAGED_BY = "managedBy"
TAG_TOKEN = "patwardenToken"  # noqa: S105  # a tag name, not a secret
TAG_AUTHORIZATION_ID = "authorizationId"
TAG_OPERATION_ID = "operationId"
TAG_VALID_TO = "validTo"
TAG_REVOKED_AT = "revokedAt"
_ROLE_HINT = (
    "Give the identity the 'Key Vault Secrets Officer' role on the vault (or, with access "
    "policies, get/list/set secret permissions)."
)


class KeyVaultSinkSpec(SinkSpec):
    """Config keys of the ``key_vault`` sink."""

    kind: Literal["key_vault"] = "key_vault"
    vault_url: str = Field(examples=["https://ops-kv.vault.azure.net"])
    secret: str = Field(pattern=r"^[0-9A-Za-z-]{1,127}$", examples=["flux-git-pat"])
    identity: str = Field(default="writer", min_length=1)
    content_type: str = Field(default=CONTENT_TYPE, min_length=1, max_length=255)

    @field_validator("vault_url")
    @classmethod
    def _https(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname or parts.path.strip("/"):
            raise ValueError("must be the vault's https:// URL without a path")
        return value.rstrip("/")

    def target(self, organization: str | None) -> tuple[str, ...]:
        """The vault and the secret (case-insensitive, as Key Vault treats them)."""
        return (self.kind, self.vault_url.rstrip("/").lower(), self.secret.lower())


@dataclass(kw_only=True)
class KeyVaultSink:
    """Writes the PAT as new versions of one Key Vault secret (see the module docstring)."""

    spec_model: ClassVar[type[KeyVaultSinkSpec]] = KeyVaultSinkSpec
    spec: KeyVaultSinkSpec
    client: KeyVaultSecrets = field(repr=False, compare=False)
    clock: Clock = field(default_factory=SystemClock, repr=False, compare=False)
    owns_client: bool = field(default=True, repr=False, compare=False)
    _written: str | None = field(default=None, repr=False)
    # (monotonic time, version) of the last read_back(): see current_version()
    _seen: tuple[float, SinkVersion | None] | None = field(default=None, repr=False)

    @classmethod
    def from_spec(
        cls, spec: KeyVaultSinkSpec | Mapping[str, Any], context: SinkContext
    ) -> KeyVaultSink:
        """Build the sink; its Key Vault client is the context's shared one for the vault and
        identity (``context.clients``), else its own (no request is made yet).

        Raises:
            SinkConfigError: the entry is invalid.
        """
        parsed = parse_spec(KeyVaultSinkSpec, spec)
        pool = context.clients
        if pool is None:
            client = _vault_client(parsed, context)
        else:  # one client per (vault, identity) for the whole run, closed by the pool
            key = ("key_vault", parsed.vault_url.lower(), parsed.identity)
            client = pool.get(key, lambda: _vault_client(parsed, context))
        return cls(
            spec=parsed,
            client=client,
            clock=context.clock or SystemClock(),
            owns_client=pool is None,
        )

    def describe(self) -> str:
        """Return ``key_vault <vault url>/secrets/<name>``."""
        return f"key_vault {self.spec.vault_url}/secrets/{self.spec.secret}"

    def close(self) -> None:
        """Close the Key Vault client unless shared (its pool closes it); not a Sink method."""
        if self.owns_client:
            self.client.close()

    def warm(self) -> None:
        """Get the vault's bearer token ahead of the first request (:meth:`SinkWiring.warmers`);
        not a Sink method.

        Raises:
            VaultAuthFailed: no token could be had.
        """
        self.client.warm()

    # --- writing ---------------------------------------------------------------------------

    def write(self, secret: Secret, meta: SinkWriteMeta) -> SinkVersion:
        """Add a new version holding *secret*, with content type, expiry and version tags.

        Raises:
            SinkUnavailable: the vault could not be reached or the identity may not set secrets
                (nothing changed).
            SinkRefused: the vault refused the request as invalid (nothing changed).
            SinkWriteFailed: the request may have been applied but no answer confirmed it.
        """
        self._seen = None
        tags = {
            TAG_MANAGED_BY: "patwarden",
            TAG_TOKEN: meta.token_name,
            TAG_AUTHORIZATION_ID: meta.authorization_id,
            TAG_OPERATION_ID: meta.operation_id,
            TAG_VALID_TO: meta.valid_to.isoformat(),
        }
        with self._translated("write", writing=True):
            stored = self.client.set_secret(
                self.spec.secret,
                secret,
                content_type=self.spec.content_type,
                tags=tags,
                expires_on=meta.valid_to,
            )
        version = stored.version
        self._written = version
        return SinkVersion(ref=version, authorization_id=meta.authorization_id)

    # --- reading ---------------------------------------------------------------------------

    def read_back(self) -> Secret:
        """Return the value of the newest version.

        Raises:
            SinkReadFailed: the secret does not exist or its newest version is disabled.
            SinkUnavailable: the vault could not be reached or the identity may not read.
        """
        try:
            with self._translated("read", writing=False):
                bundle = self.client.get_secret(self.spec.secret)
            value = bundle.value
            self._seen = (time.monotonic(), _version_of(bundle))
        except _NothingServed:
            value = None
        if value is None:
            raise SinkReadFailed(
                f"Cannot read back {self.describe()}: it does not exist or its newest version "
                "is disabled.",
                hint="Run the rotation again to write a fresh version.",
            )
        return value

    def current_version(self) -> SinkVersion | None:
        """Return the newest version and the ``authorizationId`` its tags name.

        None when the secret does not exist or its newest version is disabled (nothing is
        served). A version without patwarden's tags has ``authorization_id`` None. The first call
        within :data:`SEEN_FOR` s of a :meth:`read_back` answers from what that read saw.

        Raises:
            SinkUnavailable: the vault could not be reached or the identity may not read.
        """
        seen, self._seen = self._seen, None
        if seen is not None and seen[1] is not None and time.monotonic() - seen[0] < SEEN_FOR:
            return seen[1]  # read by the read_back() just before
        try:
            with self._translated("read", writing=False):
                return _version_of(self.client.get_secret(self.spec.secret))
        except _NothingServed:
            return None

    # --- rollback and revocation -----------------------------------------------------------

    def restore(self, previous: SinkVersion | None) -> bool:
        """Serve *previous* again: re-set its value as the newest version, then disable ours.

        If *previous* is None, or its value cannot be read, the version this sink wrote is
        disabled instead (so the vault does not serve a PAT about to be revoked); that returns
        True only for None. Never raises.
        """
        self._seen = None
        try:
            return self._restore(previous)
        except SinkError as err:
            logger.warning("could not restore %s: %s", self.describe(), err)
            return False

    def _restore(self, previous: SinkVersion | None) -> bool:
        current = self.current_version()
        if previous is not None and current is not None and current.ref == previous.ref:
            return True
        written = self._written or (current.ref if current else None)
        restored = previous is not None and self._reset_to(previous.ref)
        if written is not None and written != (previous.ref if previous else None):
            with self._translated("disable a version of", writing=True):
                self.client.update_secret(self.spec.secret, written, enabled=False)
        return restored or previous is None

    def _reset_to(self, version: str) -> bool:
        try:
            with self._translated("read an older version of", writing=False):
                self.client.update_secret(self.spec.secret, version, enabled=True)
                old = self.client.get_secret(self.spec.secret, version)
        except (SinkError, _NothingServed) as err:
            logger.warning("cannot read version %s of %s: %s", version, self.describe(), err)
            return False
        if old.value is None:
            return False
        with self._translated("restore", writing=True):
            self.client.set_secret(
                self.spec.secret,
                old.value,
                content_type=old.content_type,
                tags=old.tags,
                expires_on=old.expires_on,
            )
        return True

    def mark_revoked(self, authorization_id: str, *, at: datetime | None = None) -> int:
        """Tag every version holding the PAT *authorization_id* as revoked; return how many.

        Raises:
            SinkUnavailable: the vault could not be reached or the identity may not list/update.
        """
        self._seen = None
        stamp = (at or self.clock.now()).isoformat()
        marked = 0
        try:
            with self._translated("list the versions of", writing=False):
                versions = list(self.client.list_versions(self.spec.secret))
        except _NothingServed:
            return 0
        with self._translated("tag revoked versions of", writing=True):
            for info in versions:
                tags = dict(info.tags)
                if tags.get(TAG_AUTHORIZATION_ID) != authorization_id or TAG_REVOKED_AT in tags:
                    continue
                tags[TAG_REVOKED_AT] = stamp
                self.client.update_secret(self.spec.secret, info.version, tags=tags)
                marked += 1
        return marked

    # --- errors ----------------------------------------------------------------------------

    @contextmanager
    def _translated(self, action: str, *, writing: bool) -> Iterator[None]:
        target = self.describe()
        try:
            yield
        except VaultNotFound:
            if not writing:
                raise _NothingServed from None
            raise SinkRefused(
                f"Cannot {action} {target}: the vault or the secret does not exist.",
                hint="Check vault_url and the secret name.",
                docs=SINKS_DOCS,
            ) from None
        except VaultForbidden as err:
            if err.disabled:
                raise _NothingServed from None
            raise SinkUnavailable(
                f"Cannot {action} {target}: the identity {self.spec.identity!r} is not "
                f"allowed ({err.message}).",
                hint=_ROLE_HINT,
                docs=SINKS_DOCS,
            ) from None
        except VaultAuthFailed as err:
            raise SinkUnavailable(
                f"Cannot {action} {target}: the identity {self.spec.identity!r} could not "
                f"authenticate to Key Vault ({err.message}).",
                hint="Run `patwarden doctor` to check the identity's credential and tenant.",
                docs=SINKS_DOCS,
            ) from None
        except VaultNoAnswer as err:
            if writing and err.sent:
                raise _uncertain(action, target, err) from None
            raise _unreachable(action, target, err) from None
        except VaultError as err:
            status = err.status
            if writing and status >= 500:
                raise _uncertain(action, target, err) from None
            cls = (
                SinkRefused if 400 <= status < 500 and status not in (408, 429) else SinkUnavailable
            )
            raise cls(
                f"Cannot {action} {target}: Key Vault answered {err.message}.",
                hint="Check the vault URL and secret name; retry later if the vault is busy.",
            ) from None


def _vault_client(spec: KeyVaultSinkSpec, context: SinkContext) -> KeyVaultSecrets:
    """The sink's Key Vault client: each worker thread gets its own connections, all on one SSL
    context (:class:`~patwarden.http_answers.Sender`)."""
    from patwarden.tls import ssl_context

    # The token's audience is pinned to Key Vault, whatever a vault's challenge names.
    scope = (context.vault_scope or vault_scope)(spec.vault_url)
    return KeyVaultSecrets(
        spec.vault_url,
        context.credential(spec.identity),
        scope=scope,
        verify=ssl_context(context.ca_bundle),  # the bundle adds to the default CAs
    )


class _NothingServed(Exception):
    """Internal: the secret does not exist or its newest version is disabled."""


def _version_of(info: SecretVersionInfo) -> SinkVersion:
    return SinkVersion(ref=info.version, authorization_id=info.tags.get(TAG_AUTHORIZATION_ID))


def _uncertain(action: str, target: str, err: VaultError) -> SinkWriteFailed:
    return SinkWriteFailed(
        f"Could not {action} {target}: {err.message}. The request may or may not have "
        "taken effect.",
        hint="Run the rotation again; the old PAT stays valid until every sink holds the new one.",
        docs=SINKS_DOCS,
    )


def _unreachable(action: str, target: str, err: VaultError) -> SinkUnavailable:
    detail = err.message
    hint = "Check network access to the vault and its URL."
    if "CERTIFICATE_VERIFY_FAILED" in str(err):
        hint = "Set ca_bundle to the CA that signed the vault's certificate (PEM)."
    return SinkUnavailable(f"Cannot {action} {target}: {detail}.", hint=hint, docs=SINKS_DOCS)
