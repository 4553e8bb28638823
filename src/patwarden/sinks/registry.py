"""Finds sink implementations by ``kind``: built-ins and plugins, through one loader.

A sink kind maps to an object with ``from_spec(spec, context) -> Sink`` (usually the sink class).
Plugins register it under the entry-point group ``patwarden.sinks``::

    [project.entry-points."patwarden.sinks"]
    my_vault = "my_package.sink:MyVaultSink"

Built-ins are listed in :data:`BUILTIN_SINKS` in exactly that form and loaded by the same code,
so they work whether or not patwarden's own entry points are installed. A plugin may not take a
built-in's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Protocol

from patwarden.rotation.ports import Sink
from patwarden.sinks.errors import SINKS_DOCS, SinkConfigError, SinkPluginError
from patwarden.sinks.spec import SinkContext

ENTRY_POINT_GROUP = "patwarden.sinks"

BUILTIN_SINKS: dict[str, str] = {
    "file": "patwarden.sinks.file:FileSink",
    "key_vault": "patwarden.sinks.key_vault:KeyVaultSink",
    "service_connection": "patwarden.sinks.service_connection:ServiceConnectionSink",
    "variable_group": "patwarden.sinks.variable_group:VariableGroupSink",
}


class SinkFactory(Protocol):
    """What a sink kind resolves to: something that builds a sink from its config entry."""

    def from_spec(self, spec: Mapping[str, Any], context: SinkContext) -> Sink:
        """Validate *spec* and return a ready sink.

        Raises:
            SinkConfigError: the entry is invalid.
        """
        ...


def _origin(entry: EntryPoint) -> str:
    dist = getattr(entry, "dist", None)
    name = getattr(dist, "name", None) if dist is not None else None
    return f"{entry.value} from the package {name}" if name else entry.value


def _plugin_hint(entry: EntryPoint) -> str:
    dist = getattr(entry, "dist", None)
    name = getattr(dist, "name", None) if dist is not None else None
    if name:
        return f"Update or remove it: `pip install -U {name}` or `pip uninstall {name}`."
    return "Update or remove the package that provides it."


def available_sinks() -> dict[str, EntryPoint]:
    """Return every sink kind that can be configured, built-ins first.

    Raises:
        SinkPluginError: a plugin registered a built-in's name with another implementation.
    """
    found = {
        name: EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)
        for name, value in BUILTIN_SINKS.items()
    }
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        builtin = BUILTIN_SINKS.get(entry.name)
        if builtin is not None and entry.value != builtin:
            raise SinkPluginError(
                f"The sink plugin {entry.name!r} ({_origin(entry)}) claims the name of "
                "patwarden's built-in sink; patwarden will not let a plugin replace it.",
                hint=_plugin_hint(entry),
                docs=SINKS_DOCS,
            )
        found.setdefault(entry.name, entry)
    return found


def load_sink_factory(kind: str) -> SinkFactory:
    """Import the implementation of sink *kind*.

    Raises:
        SinkConfigError: no built-in or installed plugin provides *kind*.
        SinkPluginError: the implementation could not be imported or has no ``from_spec``.
    """
    sinks = available_sinks()
    entry = sinks.get(kind)
    if entry is None:
        raise SinkConfigError(
            f"Unknown sink kind {kind!r}. Known kinds: {', '.join(sorted(sinks))}.",
            hint="Fix the `kind`, or install the plugin that provides it "
            f"(it registers under the entry-point group {ENTRY_POINT_GROUP!r}).",
        )
    try:
        factory = entry.load()
    except Exception as err:  # a broken plugin can fail in any way; name it instead of crashing
        raise SinkPluginError(
            f"The sink plugin {kind!r} ({_origin(entry)}) could not be loaded: "
            f"{type(err).__name__}: {err}",
            hint=_plugin_hint(entry),
            docs=SINKS_DOCS,
        ) from err
    if not callable(getattr(factory, "from_spec", None)):
        raise SinkPluginError(
            f"The sink plugin {kind!r} ({_origin(entry)}) has no from_spec(spec, context); it "
            "was written for another version of patwarden.",
            hint=_plugin_hint(entry),
            docs=SINKS_DOCS,
        )
    return factory  # type: ignore[no-any-return]  # checked above: it has from_spec


def build_sink(spec: Mapping[str, Any], context: SinkContext, *, where: str = "sink") -> Sink:
    """Build the sink described by one config entry (``{kind: ..., ...}``).

    *where* names the entry in messages, e.g. ``tokens.flux-git.sinks[0]``.

    Raises:
        SinkConfigError: the entry has no valid ``kind`` or its keys are invalid.
        SinkPluginError: the implementation could not be loaded or returned something else than
            a sink.
    """
    kind = spec.get("kind")
    if not isinstance(kind, str) or not kind:
        raise SinkConfigError.for_entry(
            kind="?", problems=(("kind", "is required (e.g. key_vault, file)"),), where=where
        )
    factory = load_sink_factory(kind)
    try:
        sink = factory.from_spec(spec, context)
    except SinkConfigError as err:
        raise err.at(where) from None
    if not isinstance(sink, Sink):
        raise SinkPluginError(
            f"The sink plugin {kind!r} built a {type(sink).__name__}, which lacks the methods of "
            "a patwarden sink (write, read_back, describe, restore, current_version).",
            hint="Update or remove the package that provides it.",
            docs=SINKS_DOCS,
        )
    return sink
