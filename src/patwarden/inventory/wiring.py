"""Build the inventory's collaborators from the configuration: client, source, state, audit.

Which identity: ``--identity`` if given, else ``auditor:`` from the config, else an identity
named ``auditor``. It must be a Project Collection Administrator (contract §3.1); a service
principal works only where the organization lets service principals use Token Admin (§3.3).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from patwarden.azdo.client import AzureDevOpsClient
from patwarden.azdo.counting import CountingTransport
from patwarden.config.model import Config
from patwarden.domain.models import AuditRecord
from patwarden.errors import ConfigError
from patwarden.inventory.source import AzdoInventorySource, default_is_managed

if TYPE_CHECKING:
    from patwarden.app.context import AppContext

__all__ = [
    "STATE_FILE_NAME",
    "AuditorClient",
    "CountingTransport",
    "audit_log",
    "auditor_client",
    "auditor_name",
    "managed_ids",
    "managed_scope",
    "organizations",
    "rotate_before",
    "state_path",
]

# The state store's file under ``state_dir`` (shared with the rotation engine's commands).
STATE_FILE_NAME = "state.db"


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


def managed_scope(config: Config) -> dict[str, frozenset[str] | None]:
    """Which marked PATs count as managed: those of a configured token whose owner is the
    token's rotator (``tokens`` and ``rotators`` for :func:`default_is_managed`; ``rotators``
    is None when a rotator's user name is not configured)."""
    tokens = frozenset(config.tokens)
    rotators = set()
    for token in config.tokens.values():
        identity = config.identities.get(token.rotator or config.rotator)
        username = getattr(identity, "username", None)
        if not isinstance(username, str):
            return {"tokens": tokens, "rotators": None}
        rotators.add(username.lower())
    return {"tokens": tokens, "rotators": frozenset(rotators)}


def rotate_before(config: Config) -> dict[str, timedelta]:
    """How long before expiry each configured token rotates (``rotate_before`` + ``jitter``):
    its PATs are not ``expiring`` before then."""
    return {name: token.rotate_before + token.jitter for name, token in config.tokens.items()}


def managed_ids(context: AppContext) -> frozenset[str]:
    """Return the authorization ids the configured state knows; empty when there is no state yet
    (a missing SQLite file is not created)."""
    if not context.state_backend().exists():
        return frozenset()
    with context.state_store() as store:
        ids: set[str] = set()
        for token in store.tokens():
            for issued in (token.current, token.previous):
                if issued is not None:
                    ids.add(issued.authorization_id.lower())
        return frozenset(ids)


@contextmanager
def audit_log(context: AppContext) -> Iterator[Callable[[AuditRecord], None]]:
    """Yield a function appending to the configured state's audit log (created if missing).

    Raises:
        StateError: the store cannot be opened.
    """
    with context.state_store() as store:
        yield store.append_audit


@dataclass(frozen=True)
class AuditorClient:
    """An Azure DevOps client for the auditor identity and the source built on it."""

    client: AzureDevOpsClient
    source: AzdoInventorySource
    sent: Callable[[], int]

    @property
    def requests(self) -> int:
        """HTTP requests the auditor's client has sent so far."""
        return self.sent()


@contextmanager
def auditor_client(
    *, context: AppContext, identity: str, managed: frozenset[str]
) -> Iterator[AuditorClient]:
    """Yield the client (the run's, closed by *context*) and inventory source of *identity*.

    Raises:
        PatwardenError: the identity's credential cannot be built.
    """
    client = context.azure_devops(identity)
    kind = getattr(context.config.identities[identity], "kind", "identity")
    source = AzdoInventorySource(
        transport=client.transport,
        urls=client.urls,
        identity=f"{identity}" if kind == "user" else f"{identity} ({kind})",
        now=context.clock.now,
        is_managed=default_is_managed(managed, **managed_scope(context.config)),
    )
    yield AuditorClient(client=client, source=source, sent=lambda: context.requests_sent(identity))
