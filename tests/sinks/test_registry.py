"""The sink registry: built-ins and plugins found through the same entry-point loader."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path
from typing import Any

import pytest

import patwarden.sinks
from patwarden.rotation.ports import Sink
from patwarden.sinks.errors import SinkConfigError, SinkPluginError
from patwarden.sinks.file import FileSink, FileSinkSpec
from patwarden.sinks.registry import (
    ENTRY_POINT_GROUP,
    available_sinks,
    build_sink,
    kind_names,
    load_sink_kind,
    parse_sink_entry,
)
from patwarden.sinks.spec import SinkContext, SinkSpec
from tests.support.plugins import MEMORY_PLUGIN, install_plugin

CONTEXT = SinkContext(credential=lambda name: None)  # type: ignore[arg-type, return-value]
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
# patwarden's own registrations: the one place that lists the built-in kinds.
BUILTIN_SINKS: dict[str, str] = tomllib.loads(PYPROJECT.read_text())["project"]["entry-points"][
    ENTRY_POINT_GROUP
]


def test_every_builtin_loads_through_the_entry_point_loader() -> None:
    for kind, value in BUILTIN_SINKS.items():
        loaded = load_sink_kind(kind)
        assert callable(loaded.from_spec), kind
        assert issubclass(loaded.spec_model, SinkSpec), kind
        assert f"{value} from the package patwarden" == loaded.origin
    assert set(BUILTIN_SINKS) <= set(available_sinks()) <= kind_names()


def test_every_sink_module_with_a_spec_model_is_registered() -> None:
    """Adding a kind is one module plus its entry point: a module without one is caught here."""
    registered = {value.partition(":")[0] for value in BUILTIN_SINKS.values()}
    folder = Path(patwarden.sinks.__file__).parent
    with_specs = {
        f"patwarden.sinks.{path.stem}"
        for path in folder.glob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef)
        and any(getattr(base, "id", None) == "SinkSpec" for base in node.bases)
    }
    assert with_specs == registered


def test_parse_sink_entry_returns_the_kinds_spec(tmp_path: Path) -> None:
    spec = parse_sink_entry({"kind": "file", "path": str(tmp_path / "pat")})
    assert isinstance(spec, FileSinkSpec)
    assert parse_sink_entry(spec) is spec
    assert spec.target("contoso") == ("file", str(tmp_path / "pat"))
    assert build_sink(spec, CONTEXT).describe() == FileSink(spec=spec).describe()


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
    install_plugin(
        plugin_root,
        dist="demo-memory-sink",
        module="demo_memory",
        source=MEMORY_PLUGIN,
        entries={"memory": "demo_memory:MemorySink"},
    )
    assert "memory" in available_sinks()
    sink = build_sink({"kind": "memory", "name": "m1"}, CONTEXT)
    assert sink.describe() == "memory m1"


def test_a_plugin_that_fails_to_import_is_named_with_update_or_remove(plugin_root: Path) -> None:
    install_plugin(
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
    install_plugin(
        plugin_root,
        dist="demo-old-sink",
        module="demo_old",
        source="class OldSink:\n    def make(self, spec):\n        return None\n",
        entries={"old": "demo_old:OldSink"},
    )
    with pytest.raises(SinkPluginError, match=r"has no from_spec.*another version") as caught:
        load_sink_kind("old")
    assert "demo-old-sink" in str(caught.value)


def test_a_plugin_without_a_spec_model_is_refused(plugin_root: Path) -> None:
    source = """
        class NoModel:
            @classmethod
            def from_spec(cls, spec, context):
                return None
    """
    install_plugin(
        plugin_root,
        dist="demo-nomodel-sink",
        module="demo_nomodel",
        source=source,
        entries={"nomodel": "demo_nomodel:NoModel"},
    )
    with pytest.raises(SinkPluginError, match=r"has no spec_model.*another version"):
        build_sink({"kind": "nomodel"}, CONTEXT)


def test_a_plugin_that_builds_no_sink_is_refused(plugin_root: Path) -> None:
    source = """
        from patwarden.plugins import SinkSpec

        class Half:
            spec_model = SinkSpec

            @classmethod
            def from_spec(cls, spec, context):
                return object()
    """
    install_plugin(
        plugin_root,
        dist="demo-half-sink",
        module="demo_half",
        source=source,
        entries={"half": "demo_half:Half"},
    )
    with pytest.raises(SinkPluginError, match="lacks the methods of a patwarden sink"):
        build_sink({"kind": "half"}, CONTEXT)


def test_a_plugin_may_not_replace_a_builtin(plugin_root: Path) -> None:
    install_plugin(
        plugin_root,
        dist="demo-evil-sink",
        module="demo_evil",
        source=MEMORY_PLUGIN,
        entries={"key_vault": "demo_evil:MemorySink"},
    )
    with pytest.raises(SinkPluginError, match="claims the name of patwarden's built-in") as caught:
        build_sink({"kind": "file", "path": "/x"}, CONTEXT)
    assert "pip uninstall demo-evil-sink" in str(caught.value)


def test_the_builtin_entry_points_themselves_are_accepted(plugin_root: Path) -> None:
    # What pyproject's [project.entry-points."patwarden.sinks"] table will register.
    install_plugin(
        plugin_root, dist="demo-self", module="demo_self", source="", entries=BUILTIN_SINKS
    )
    sinks: dict[str, Any] = available_sinks()
    assert {name: sinks[name].value for name in BUILTIN_SINKS} == BUILTIN_SINKS


def test_entry_points_are_scanned_once_until_the_path_changes(
    plugin_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from patwarden.sinks import registry

    scans: list[str] = []
    real = registry.entry_points  # type: ignore[attr-defined]

    def counting(**kwargs: Any) -> Any:
        scans.append(kwargs["group"])
        return real(**kwargs)

    monkeypatch.setattr(registry, "entry_points", counting)
    registry.clear_cache()
    for _ in range(50):  # a fleet looks every sink of every token up
        assert load_sink_kind("key_vault") is load_sink_kind("key_vault")
        available_sinks()
    assert scans == [ENTRY_POINT_GROUP]
    later = plugin_root / "later"
    later.mkdir()
    install_plugin(
        later,
        dist="demo-later-sink",
        module="demo_later",
        source=MEMORY_PLUGIN,
        entries={"later": "demo_later:MemorySink"},
    )
    monkeypatch.syspath_prepend(str(plugin_root / "later"))
    assert "later" in available_sinks()  # a new folder on the path is scanned again
    assert len(scans) == 2
