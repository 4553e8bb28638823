"""Packages whose names are imported on first use (patwarden.lazy)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from patwarden import lazy


def test_a_name_is_imported_on_first_use_then_kept() -> None:
    code = (
        "import sys, patwarden.sinks as sinks\n"
        "assert 'patwarden.sinks.registry' not in sys.modules\n"
        "build = sinks.build_sink\n"
        "assert 'patwarden.sinks.registry' in sys.modules\n"
        "assert vars(sinks)['build_sink'] is build\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_an_unknown_name_is_an_attribute_error() -> None:
    getattr_ = lazy.exports("patwarden.sinks", {"build_sink": "patwarden.sinks.registry"})
    with pytest.raises(AttributeError, match=r"module 'patwarden\.sinks' has no attribute 'nope'"):
        getattr_("nope")
