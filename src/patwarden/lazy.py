"""A package's names, each imported from its module on first use (PEP 562).

``patwarden.azdo`` and ``patwarden.sinks`` export their names this way, so that importing one
light module of theirs (the rate limiters, ``sinks.safe_files``) does not import the package's
heavy ones (httpx; pydantic and the plugin registry) that ``status`` and ``plan`` never use.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["exports"]


def exports(package: str, modules: Mapping[str, str]) -> Callable[[str], Any]:
    """The ``__getattr__`` of *package*: each name of *modules* (name -> its module) is imported
    on first use, then kept as the package's attribute."""

    def __getattr__(name: str) -> Any:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
