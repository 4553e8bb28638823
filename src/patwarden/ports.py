"""Protocols the engine needs: sinks, the PAT issuer, the state store and a clock.

Adapters implement these; the engine and its tests depend only on them. Nothing here does I/O.
Secrets cross these boundaries only as :class:`patwarden.secret.Secret`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from patwarden.secret import Secret

__all__ = [
    "Clock",
    "Sink",
    "SinkVersion",
    "SinkWriteMeta",
]


@dataclass(frozen=True, kw_only=True)
class SinkWriteMeta:
    """What a sink records beside the value it stores (tags, a description). Never a secret."""

    token_name: str
    authorization_id: str
    operation_id: str
    valid_to: datetime


@dataclass(frozen=True, kw_only=True)
class SinkVersion:
    """One version of the value a sink holds.

    ``ref`` is opaque to the engine (a Key Vault secret version id, a variable group revision,
    a file digest, …); only the sink that produced it interprets it. ``authorization_id`` is the
    PAT the sink says this version holds, read from the sink's own metadata when possible
    (``None`` if unknown).
    """

    ref: str
    authorization_id: str | None = None


@runtime_checkable
class Sink(Protocol):
    """A place a PAT value is written to for its consumers (Key Vault secret, variable group, …)."""

    def write(self, secret: Secret, meta: SinkWriteMeta) -> SinkVersion:
        """Store ``secret`` as the sink's current value, tagged with ``meta``; return its version.

        Raises:
            SinkError: the value could not be written (the previous value may or may not remain).
        """
        ...

    def read_back(self) -> Secret | None:
        """Return the sink's current value, or ``None`` if this sink cannot be read back.

        Raises:
            SinkError: the sink can be read back in principle but the read failed.
        """
        ...

    def describe(self) -> str:
        """Return a one-line, secret-free description (``key_vault ops-kv/flux-git-pat``)."""
        ...

    def restore(self, previous: SinkVersion | None) -> bool:
        """Best effort: make ``previous`` the current value again (``None``: remove what we wrote).

        Returns ``True`` when the sink serves ``previous`` again, ``False`` when it could not.
        Must not raise for expected failures; the engine reports ``False`` as "sink holds the new
        version".
        """
        ...

    def current_version(self) -> SinkVersion | None:
        """Return the version the sink serves now (``None``: empty, or the sink keeps no versions).

        Raises:
            SinkError: the sink could not be read.
        """
        ...


class Clock(Protocol):
    """The time source. Domain code never calls ``datetime.now``; it gets a Clock."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware (UTC)."""
        ...
