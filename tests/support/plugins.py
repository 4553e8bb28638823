"""Install a throw-away sink plugin (a dist-info with entry points plus its module) on sys.path."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from patwarden.sinks.registry import ENTRY_POINT_GROUP

# A complete plugin: a spec model with an identity and a target, and a sink kept in memory.
MEMORY_PLUGIN = """
    from typing import Literal

    from pydantic import Field

    from patwarden.plugins import SinkSpec, SinkVersion, parse_spec

    class MemorySinkSpec(SinkSpec):
        kind: Literal["memory"] = "memory"
        name: str = Field(pattern=r"^[a-z]+[0-9]*$")
        slots: int = Field(default=1, ge=1, le=8)
        identity: str = "writer"

        def target(self, organization):
            return (self.kind, self.name)

    class MemorySink:
        spec_model = MemorySinkSpec

        def __init__(self, name):
            self.name = name
            self.value = None

        @classmethod
        def from_spec(cls, spec, context):
            return cls(parse_spec(MemorySinkSpec, spec).name)

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


def install_plugin(
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
    """A site folder on sys.path for :func:`install_plugin`; its ``demo_*`` modules are unloaded."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    before = set(sys.modules)
    yield root
    for name in set(sys.modules) - before:
        if name.startswith("demo_"):
            del sys.modules[name]
