"""Finds sink kinds by name: built-ins and plugins, through one entry-point loader.

A sink kind is registered under the entry-point group ``patwarden.sinks`` and names the sink
class (or any object) with two attributes: ``spec_model``, the kind's
:class:`~patwarden.sinks.spec.SinkSpec` subclass (its keys, validation and target), and
``from_spec(spec, context) -> Sink``::

    [project.entry-points."patwarden.sinks"]
    my_vault = "my_package.sink:MyVaultSink"

patwarden's own sinks are registered exactly so, in its pyproject.toml: adding a kind is one
module plus that one line, and nothing else lists the kinds. A plugin may not take the name of a
kind patwarden itself registers. The config layer asks :func:`load_sink_kind` for a kind's model
to validate entries; :func:`parse_sink_entry` and :func:`build_sink` turn entries into sinks.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from patwarden.domain.models import SinkEntry
from patwarden.rotation.ports import Sink
from patwarden.sinks.errors import SINKS_DOCS, SinkConfigError, SinkPluginError
from patwarden.sinks.spec import SinkContext, SinkSpec, parse_spec

__all__ = [
    "ENTRY_POINT_GROUP",
    "SinkKind",
    "available_sinks",
    "build_sink",
    "clear_cache",
    "kind_names",
    "load_sink_kind",
    "parse_sink_entry",
]

ENTRY_POINT_GROUP = "patwarden.sinks"
_OWN_DISTRIBUTION = "patwarden"


@dataclass(frozen=True, kw_only=True)
class SinkKind:
    """One loaded sink kind: its name, its spec model and how to build a sink from a spec."""

    name: str
    spec_model: type[SinkSpec]
    from_spec: Callable[[SinkSpec, SinkContext], object]
    origin: str  # for messages: "module:attr from the package <dist>"

    def parse(self, entry: SinkSpec | Mapping[str, Any], *, where: str = "sink") -> SinkSpec:
        """Validate one entry against this kind's model (a spec of the model is returned as is).

        Raises:
            SinkConfigError: listing every problem, each with its key path under *where*.
        """
        try:
            return parse_spec(self.spec_model, entry)
        except SinkConfigError as err:
            raise err.at(where) from None

    def build(self, spec: SinkSpec, context: SinkContext) -> Sink:
        """Build the sink of a validated *spec*.

        Raises:
            SinkConfigError: the sink needs something the context lacks (e.g. an organization).
            SinkPluginError: the implementation returned something else than a sink.
        """
        sink = self.from_spec(spec, context)
        if not isinstance(sink, Sink):
            raise SinkPluginError(
                f"The sink plugin {self.name!r} built a {type(sink).__name__}, which lacks the "
                "methods of a patwarden sink (write, read_back, describe, restore, "
                "current_version).",
                hint="Update or remove the package that provides it.",
                docs=SINKS_DOCS,
            )
        return sink


def _dist_name(entry: EntryPoint) -> str | None:
    dist = getattr(entry, "dist", None)
    name = getattr(dist, "name", None) if dist is not None else None
    return name if isinstance(name, str) else None


def _origin(entry: EntryPoint) -> str:
    name = _dist_name(entry)
    return f"{entry.value} from the package {name}" if name else entry.value


def _plugin_hint(entry: EntryPoint) -> str:
    name = _dist_name(entry)
    if name:
        return f"Update or remove it: `pip install -U {name}` or `pip uninstall {name}`."
    return "Update or remove the package that provides it."


def _is_own(entry: EntryPoint) -> bool:
    return (_dist_name(entry) or "").lower() == _OWN_DISTRIBUTION


# Scanning the installed distributions' entry points costs milliseconds; a run looks kinds up for
# every sink of every token. Both caches are keyed by sys.path: what is installed only changes
# when the path does (a plugin folder added at run time, as the tests do).
_cache_lock = threading.Lock()
_entries: dict[tuple[str, ...], tuple[EntryPoint, ...]] = {}
_kinds: dict[tuple[tuple[str, ...], str], SinkKind] = {}


def _group_entries() -> tuple[EntryPoint, ...]:
    key = tuple(sys.path)
    with _cache_lock:
        cached = _entries.get(key)
    if cached is None:
        cached = tuple(entry_points(group=ENTRY_POINT_GROUP))
        with _cache_lock:
            _entries.clear()  # only the current path's scan is worth keeping
            _entries[key] = cached
    return cached


def clear_cache() -> None:
    """Forget the scanned entry points and the loaded kinds (the next lookup scans again)."""
    with _cache_lock:
        _entries.clear()
        _kinds.clear()


def available_sinks() -> dict[str, EntryPoint]:
    """Return every sink kind that can be configured, patwarden's own first (nothing imported).

    The installed entry points are scanned once per process (again when ``sys.path`` changes).

    Raises:
        SinkPluginError: a plugin registered the name of one of patwarden's own kinds.
    """
    entries = _group_entries()
    found = {entry.name: entry for entry in entries if _is_own(entry)}
    for entry in entries:
        own = found.get(entry.name)
        if own is not None and not _is_own(entry) and entry.value != own.value:
            raise SinkPluginError(
                f"The sink plugin {entry.name!r} ({_origin(entry)}) claims the name of "
                "patwarden's built-in sink; patwarden will not let a plugin replace it.",
                hint=_plugin_hint(entry),
                docs=SINKS_DOCS,
            )
        found.setdefault(entry.name, entry)
    return found


def kind_names() -> set[str]:
    """Every registered sink kind's name (nothing imported; a clash is left to the loader)."""
    return {entry.name for entry in _group_entries()}


def load_sink_kind(kind: str) -> SinkKind:
    """Import the implementation of sink *kind* (once per process: later calls return it).

    Raises:
        SinkConfigError: no built-in or installed plugin provides *kind*.
        SinkPluginError: the implementation could not be imported, or lacks ``spec_model`` or
            ``from_spec``.
    """
    key = (tuple(sys.path), kind)
    with _cache_lock:
        loaded = _kinds.get(key)
    if loaded is None:
        loaded = _load_sink_kind(kind)
        with _cache_lock:
            _kinds[key] = loaded
    return loaded


def _load_sink_kind(kind: str) -> SinkKind:
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
    from_spec = getattr(factory, "from_spec", None)
    model = getattr(factory, "spec_model", None)
    if not callable(from_spec):
        missing = "no from_spec(spec, context)"
    elif not (isinstance(model, type) and issubclass(model, SinkSpec)):
        missing = "no spec_model (a patwarden.plugins.SinkSpec subclass)"
    else:
        return SinkKind(name=kind, spec_model=model, from_spec=from_spec, origin=_origin(entry))
    raise SinkPluginError(
        f"The sink plugin {kind!r} ({_origin(entry)}) has {missing}; it was written for another "
        "version of patwarden.",
        hint=_plugin_hint(entry),
        docs=SINKS_DOCS,
    )


def _parsed(entry: SinkEntry | Mapping[str, Any], where: str) -> tuple[SinkKind, SinkSpec]:
    if not isinstance(entry, Mapping | SinkSpec):
        raise SinkConfigError.for_entry(
            kind="?",
            problems=(("", "must be a mapping such as {kind: key_vault, ...}"),),
            where=where,
        )
    name = entry.get("kind") if isinstance(entry, Mapping) else entry.kind
    if not isinstance(name, str) or not name:
        raise SinkConfigError.for_entry(
            kind="?", problems=(("kind", "is required (e.g. key_vault, file)"),), where=where
        )
    kind = load_sink_kind(name)
    return kind, kind.parse(entry, where=where)


def parse_sink_entry(entry: SinkEntry | Mapping[str, Any], *, where: str = "sink") -> SinkSpec:
    """Validate one config entry (``{kind: ..., ...}``) against its kind's spec model.

    *where* names the entry in messages, e.g. ``tokens.flux-git.sinks[0]``.

    Raises:
        SinkConfigError: the entry has no valid ``kind`` or its keys are invalid.
        SinkPluginError: the kind's implementation could not be loaded.
    """
    return _parsed(entry, where)[1]


def build_sink(
    entry: SinkEntry | Mapping[str, Any], context: SinkContext, *, where: str = "sink"
) -> Sink:
    """Build the sink described by one config entry or validated spec.

    Raises:
        SinkConfigError: the entry has no valid ``kind`` or its keys are invalid.
        SinkPluginError: the implementation could not be loaded or returned something else than
            a sink.
    """
    kind, spec = _parsed(entry, where)
    try:
        return kind.build(spec, context)
    except SinkConfigError as err:
        raise err.at(where) from None
