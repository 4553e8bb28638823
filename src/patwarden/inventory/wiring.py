"""Build the inventory's collaborators from the configuration: client, source, state, audit.

Which identity: ``--identity`` if given, else ``auditor:`` from the config, else an identity
named ``auditor``. It must be a Project Collection Administrator (contract §3.1); a service
principal works only where the organization lets service principals use Token Admin (§3.3).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from patwarden.azdo.client import AzureDevOpsClient
from patwarden.azdo.ratelimit import RateLimiter
from patwarden.azdo.transport import ServiceUrls
from patwarden.config.model import Config
from patwarden.domain.models import AuditRecord
from patwarden.errors import ConfigError
from patwarden.inventory.source import AzdoInventorySource, default_is_managed
from patwarden.tls import ssl_context

if TYPE_CHECKING:
    from patwarden.identity.credential_set import CredentialSet

# The state store's file under ``state_dir`` (shared with the rotation engine's commands).
STATE_FILE_NAME = "state.db"


class CountingTransport(httpx.BaseTransport):
    """An httpx transport that counts the requests it sends (thread-safe)."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self.requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Count and send *request*."""
        with self._lock:
            self.requests += 1
        return self._inner.handle_request(request)

    def close(self) -> None:
        """Close the wrapped transport."""
        self._inner.close()


def auditor_name(config: Config, explicit: str | None) -> str:
    """Return the identity the inventory runs as.

    Raises:
        ConfigError: none is configured, or the named one does not exist.
    """
    name = explicit or config.auditor or ("auditor" if "auditor" in config.identities else None)
    if name is None:
        raise ConfigError(
            "No identity is configured for the inventory.",
            hint="Add `auditor: <identity>` to the config (a Project Collection Administrator "
            "user signed in with `patwarden login`, or a service principal where the "
            "organization allows it), or pass --identity NAME.",
        )
    if name not in config.identities:
        known = ", ".join(sorted(config.identities)) or "none"
        raise ConfigError(
            f"The inventory identity {name!r} is not defined under `identities:`.",
            hint=f"Configured identities: {known}.",
        )
    return name


def organizations(config: Config, explicit: tuple[str, ...]) -> tuple[str, ...]:
    """Return ``--org`` values, else the config's organizations.

    Raises:
        ConfigError: neither names an organization.
    """
    orgs = explicit or config.orgs
    if not orgs:
        raise ConfigError(
            "No organization to scan.",
            hint="Pass --org ORG (repeatable) or set `organization:` in the config.",
        )
    return tuple(dict.fromkeys(orgs))


def state_path(config: Config) -> Path:
    """Where the state store lives: ``state_dir/state.db``."""
    return config.state_dir / STATE_FILE_NAME


def managed_ids(path: Path) -> frozenset[str]:
    """Return the authorization ids the state store knows; empty when there is no store yet."""
    if not path.exists():
        return frozenset()
    from patwarden.state import SqliteStateStore

    with SqliteStateStore(path=path, now=lambda: datetime.now(UTC)) as store:
        ids: set[str] = set()
        for token in store.tokens():
            for issued in (token.current, token.previous):
                if issued is not None:
                    ids.add(issued.authorization_id.lower())
        return frozenset(ids)


@contextmanager
def audit_log(path: Path) -> Iterator[Callable[[AuditRecord], None]]:
    """Yield a function appending to the state store's audit log (created if missing).

    Raises:
        StateError: the store cannot be opened.
    """
    from patwarden.state import SqliteStateStore

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with SqliteStateStore(path=path, now=lambda: datetime.now(UTC)) as store:
        yield store.append_audit


@dataclass(frozen=True)
class AuditorClient:
    """An Azure DevOps client for the auditor identity and the source built on it."""

    client: AzureDevOpsClient
    source: AzdoInventorySource
    counter: CountingTransport


@contextmanager
def auditor_client(
    *,
    config: Config,
    credentials: CredentialSet,
    identity: str,
    managed: frozenset[str],
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    rate_limiter: RateLimiter | None = None,
) -> Iterator[AuditorClient]:
    """Yield the client and inventory source of *identity*; close them afterwards.

    Raises:
        PatwardenError: the identity's credential cannot be built.
    """
    azure = config.azure
    counter = CountingTransport(httpx.HTTPTransport(verify=ssl_context(azure.ca_bundle)))
    client = AzureDevOpsClient(
        credential=credentials.get(identity),
        urls=ServiceUrls(azure_devops_url=azure.azure_devops_url, vssps_url=azure.vssps_url),
        rate_limiter=rate_limiter or RateLimiter(name=identity),
        http_transport=counter,
    )
    kind = getattr(config.identities[identity], "kind", "identity")
    source = AzdoInventorySource(
        transport=client.transport,
        urls=client.urls,
        identity=f"{identity}" if kind == "user" else f"{identity} ({kind})",
        now=now,
        is_managed=default_is_managed(managed),
    )
    try:
        yield AuditorClient(client=client, source=source, counter=counter)
    finally:
        client.close()
