"""Fixtures of the emulator's own tests."""

from __future__ import annotations

import pytest

from tests.conftest import RunningEmulator


@pytest.fixture
def emu(emulator: RunningEmulator) -> RunningEmulator:
    """The shared emulator, reset to its seeded state."""
    return emulator
