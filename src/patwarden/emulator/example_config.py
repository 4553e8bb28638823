"""The ready-to-use patwarden config the emulator writes into its state directory."""

from __future__ import annotations

from pathlib import Path

from patwarden.emulator.context import Emulator


def write_example_config(emu: Emulator) -> Path | None:
    """Write ``patwarden.yaml`` pointing at this emulator; None until the config format exists."""
    return None
