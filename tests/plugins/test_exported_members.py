"""The public plugin API: a sorted ``__all__``, every name importable, no pytest at import."""

from __future__ import annotations

import subprocess
import sys

import patwarden.plugins
import patwarden.plugins.testing


def test_all_is_sorted_and_complete() -> None:
    for module in (patwarden.plugins, patwarden.plugins.testing):
        assert module.__all__ == sorted(module.__all__)
        for name in module.__all__:
            assert getattr(module, name) is not None, name


def test_the_plugin_api_does_not_import_pytest() -> None:
    code = "import sys, patwarden.plugins; sys.exit('pytest' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_everything_a_sink_needs_is_exported() -> None:
    needed = {"Secret", "Sink", "SinkContext", "SinkSpec", "SinkVersion", "SinkWriteMeta"}
    errors = {"SinkConfigError", "SinkReadFailed", "SinkRefused", "SinkUnavailable"}
    assert needed | errors | {"RevocationTagging", "SinkWriteFailed"} <= set(
        patwarden.plugins.__all__
    )
