"""The sink registry: built-ins and plugins found through the same entry-point loader."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from patwarden.rotation.ports import Sink
from patwarden.sinks.errors import SinkConfigError, SinkPluginError
from patwarden.sinks.file import FileSink
from patwarden.sinks.registry import (
    BUILTIN_SINKS,
    ENTRY_POINT_GROUP,
    available_sinks,
    build_sink,
    load_sink_factory,
)
from patwarden.sinks.spec import SinkContext

CONTEXT = SinkContext(credential=lambda name: None)  # type: ignore[arg-type, return-value]


def _install_plugin(
    root: Path, *, dist: str, module: str, source: str, entries: dict[str, str]
) -> None:
    """Lay out an installed distribution (dist-info with entry points) plus its module."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "\n".join(f"{name} = {value}" for name, value in entries.items())
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}\n")


@pytest.fixture
def plugin_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    before = set(sys.modules)
    yield root
    for name in set(sys.modules) - before:
        if name.startswith("demo_"):
            del sys.modules[name]


GOOD_PLUGIN = """
    from patwarden.secret import Secret
    from patwarden.rotation.ports import SinkVersion

    class MemorySink:
        def __init__(self, name):
            self.name = name
            self.value = None

        @classmethod
        def from_spec(cls, spec, context):
            return cls(spec["name"])

        def write(self, secret, meta):
            self.value = secret
            return SinkVersion(ref="1", authorization_id=meta.authorization_id)

        def read_back(self):
            return self.value

        def describe(self):
            return f"memory {self.name}"

        def restore(self, previous):
            return False

        def current_version(self):
            return None
"""


def test_every_builtin_loads_through_the_entry_point_loader() -> None:
    for kind in BUILTIN_SINKS:
        factory = load_sink_factory(kind)
        assert callable(factory.from_spec), kind
    assert set(BUILTIN_SINKS) <= set(available_sinks())


def test_build_sink_builds_a_builtin(tmp_path: Path) -> None:
    sink = build_sink({"kind": "file", "path": str(tmp_path / "pat")}, CONTEXT)
    assert isinstance(sink, FileSink)
    assert isinstance(sink, Sink)


def test_unknown_kind_lists_known_kinds() -> None:
    with pytest.raises(SinkConfigError, match="Unknown sink kind 'vault'") as caught:
        build_sink({"kind": "vault"}, CONTEXT)
    assert "key_vault" in str(caught.value)
    assert ENTRY_POINT_GROUP in str(caught.value)


def test_missing_kind_names_the_entry() -> None:
    with pytest.raises(SinkConfigError, match=r"tokens\.x\.sinks\[1\]\.kind: is required"):
        build_sink({"path": "/x"}, CONTEXT, where="tokens.x.sinks[1]")


def test_config_problems_are_anchored_at_the_entry() -> None:
    with pytest.raises(SinkConfigError) as caught:
        build_sink({"kind": "file", "path": "rel"}, CONTEXT, where="tokens.flux-git.sinks[0]")
    assert "tokens.flux-git.sinks[0].path: Value error, must be an absolute path" in str(
        caught.value
    )


def test_a_plugin_is_found_through_its_entry_point(plugin_root: Path) -> None:
    _install_plugin(
        plugin_root,
        dist="demo-memory-sink",
        module="demo_memory",
        source=GOOD_PLUGIN,
        entries={"memory": "demo_memory:MemorySink"},
    )
    assert "memory" in available_sinks()
    sink = build_sink({"kind": "memory", "name": "m1"}, CONTEXT)
    assert sink.describe() == "memory m1"


def test_a_plugin_that_fails_to_import_is_named_with_update_or_remove(plugin_root: Path) -> None:
    _install_plugin(
        plugin_root,
        dist="demo-broken-sink",
        module="demo_broken",
        source="import patwarden.no_such_module\n",
        entries={"broken": "demo_broken:BrokenSink"},
    )
    with pytest.raises(SinkPluginError) as caught:
        build_sink({"kind": "broken"}, CONTEXT)
    message = str(caught.value)
    assert (
        "The sink plugin 'broken' (demo_broken:BrokenSink from the package demo-broken-sink)"
        in message
    )
    assert "ModuleNotFoundError" in message
    assert "Update or remove it: `pip install -U demo-broken-sink`" in message
    assert caught.value.exit_code == 5


def test_a_plugin_without_from_spec_is_refused(plugin_root: Path) -> None:
    _install_plugin(
        plugin_root,
        dist="demo-old-sink",
        module="demo_old",
        source="class OldSink:\n    def make(self, spec):\n        return None\n",
        entries={"old": "demo_old:OldSink"},
    )
    with pytest.raises(SinkPluginError, match=r"has no from_spec.*another version") as caught:
        load_sink_factory("old")
    assert "demo-old-sink" in str(caught.value)


def test_a_plugin_that_builds_no_sink_is_refused(plugin_root: Path) -> None:
    source = """
        class Half:
            @classmethod
            def from_spec(cls, spec, context):
                return object()
    """
    _install_plugin(
        plugin_root,
        dist="demo-half-sink",
        module="demo_half",
        source=source,
        entries={"half": "demo_half:Half"},
    )
    with pytest.raises(SinkPluginError, match="lacks the methods of a patwarden sink"):
        build_sink({"kind": "half"}, CONTEXT)


def test_a_plugin_may_not_replace_a_builtin(plugin_root: Path) -> None:
    _install_plugin(
        plugin_root,
        dist="demo-evil-sink",
        module="demo_evil",
        source=GOOD_PLUGIN,
        entries={"key_vault": "demo_evil:MemorySink"},
    )
    with pytest.raises(SinkPluginError, match="claims the name of patwarden's built-in") as caught:
        build_sink({"kind": "file", "path": "/x"}, CONTEXT)
    assert "pip uninstall demo-evil-sink" in str(caught.value)


def test_the_builtin_entry_points_themselves_are_accepted(plugin_root: Path) -> None:
    # What pyproject's [project.entry-points."patwarden.sinks"] table will register.
    _install_plugin(
        plugin_root, dist="demo-self", module="demo_self", source="", entries=BUILTIN_SINKS
    )
    sinks: dict[str, Any] = available_sinks()
    assert {name: sinks[name].value for name in BUILTIN_SINKS} == BUILTIN_SINKS
