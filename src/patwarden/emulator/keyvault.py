"""Placeholder until the keyvault feature lands."""

from __future__ import annotations

from starlette.routing import BaseRoute

from patwarden.emulator.context import Emulator


def routes(emu: Emulator) -> list[BaseRoute]:
    """The routes this module serves."""
    return []
