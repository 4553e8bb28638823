"""Fixtures of the config tests."""

from __future__ import annotations

from tests.support.plugins import plugin_root  # noqa: F401  # installs throw-away sink plugins
