"""Sinks: where a new PAT is written (Key Vault, variable groups, service connections, files).

Build one from its config entry with :func:`build_sink`; every kind, built-in or plugin, is found
through :mod:`patwarden.sinks.registry` (the ``patwarden.sinks`` entry points). Each sink implements
:class:`patwarden.rotation.ports.Sink`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from patwarden import lazy

if TYPE_CHECKING:
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

# Each name's module, imported on first use: the state store and the token cache import
# `patwarden.sinks.safe_files`, which must not import the registry (pydantic, entry points) that
# `status` never needs (docs/performance.md#start-up).
_LAZY = {
    "SinkConfigError": "patwarden.sinks.errors",
    "SinkPluginError": "patwarden.sinks.errors",
    "SinkReadFailed": "patwarden.sinks.errors",
    "SinkRefused": "patwarden.sinks.errors",
    "SinkUnavailable": "patwarden.sinks.errors",
    "SinkWriteFailed": "patwarden.sinks.errors",
    "ENTRY_POINT_GROUP": "patwarden.sinks.registry",
    "SinkKind": "patwarden.sinks.registry",
    "available_sinks": "patwarden.sinks.registry",
    "build_sink": "patwarden.sinks.registry",
    "load_sink_kind": "patwarden.sinks.registry",
    "parse_sink_entry": "patwarden.sinks.registry",
    "SinkContext": "patwarden.sinks.spec",
    "SinkSpec": "patwarden.sinks.spec",
}


__getattr__ = lazy.exports(__name__, _LAZY)


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
