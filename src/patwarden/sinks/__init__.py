"""Sinks: where a new PAT is written (Key Vault, variable groups, service connections, files).

Build one from its config entry with :func:`build_sink`; every kind, built-in or plugin, is found
through :mod:`patwarden.sinks.registry` (the ``patwarden.sinks`` entry points). Each sink implements
:class:`patwarden.rotation.ports.Sink`.
"""

from __future__ import annotations

from patwarden.sinks.errors import (
    SinkConfigError,
    SinkPluginError,
    SinkReadFailed,
    SinkRefused,
    SinkUnavailable,
    SinkWriteFailed,
)
from patwarden.sinks.registry import (
    ENTRY_POINT_GROUP,
    SinkKind,
    available_sinks,
    build_sink,
    load_sink_kind,
    parse_sink_entry,
)
from patwarden.sinks.spec import SinkContext, SinkSpec

__all__ = [
    "ENTRY_POINT_GROUP",
    "SinkConfigError",
    "SinkContext",
    "SinkKind",
    "SinkPluginError",
    "SinkReadFailed",
    "SinkRefused",
    "SinkSpec",
    "SinkUnavailable",
    "SinkWriteFailed",
    "available_sinks",
    "build_sink",
    "load_sink_kind",
    "parse_sink_entry",
]
