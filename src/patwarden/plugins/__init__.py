"""The public API for sink plugins: everything a ``patwarden.sinks`` entry point needs.

A sink plugin is a package with one module holding a spec model (a :class:`SinkSpec` subclass:
the kind's keys, validation and :meth:`SinkSpec.target`) and a sink class (``spec_model`` plus
``from_spec(spec, context)``, and the methods of :class:`Sink`), registered in its
pyproject.toml::

    [project.entry-points."patwarden.sinks"]
    env_file = "patwarden_sink_env_file:EnvFileSink"

Its tests inherit :class:`patwarden.plugins.testing.SinkContract` (that module needs pytest;
this one does not import it). Walkthrough: docs/sinks.md#writing-a-sink-plugin; a complete
example: examples/patwarden-sink-env-file. Anything not listed in ``__all__`` is private.
"""

from __future__ import annotations

from patwarden.errors import SinkError
from patwarden.rotation.ports import RevocationTagging, Sink, SinkVersion, SinkWriteMeta
from patwarden.secret import Secret
from patwarden.sinks.errors import (
    SinkConfigError,
    SinkPluginError,
    SinkReadFailed,
    SinkRefused,
    SinkUnavailable,
    SinkWriteFailed,
)
from patwarden.sinks.registry import ENTRY_POINT_GROUP
from patwarden.sinks.spec import SinkContext, SinkSpec, parse_spec

__all__ = [
    "ENTRY_POINT_GROUP",
    "RevocationTagging",
    "Secret",
    "Sink",
    "SinkConfigError",
    "SinkContext",
    "SinkError",
    "SinkPluginError",
    "SinkReadFailed",
    "SinkRefused",
    "SinkSpec",
    "SinkUnavailable",
    "SinkVersion",
    "SinkWriteFailed",
    "SinkWriteMeta",
    "parse_spec",
]
