"""Which config file a command reads: ``--config``, else ``$PATWARDEN_CONFIG``, else
``./patwarden.yaml``. Light to import (no YAML, no pydantic): ``status`` finds its snapshot of
the config by this path before it decides whether to load it (:mod:`patwarden.app.snapshot`).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CONFIG_ENV_VAR", "DEFAULT_CONFIG_FILE", "resolve_config_path"]

CONFIG_ENV_VAR = "PATWARDEN_CONFIG"
DEFAULT_CONFIG_FILE = "patwarden.yaml"


def resolve_config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--config`` if given, else ``$PATWARDEN_CONFIG``, else ``./patwarden.yaml``."""
    if explicit:
        return Path(explicit).expanduser()
    from_env = os.environ.get(CONFIG_ENV_VAR)
    if from_env:
        return Path(from_env).expanduser()
    return Path(DEFAULT_CONFIG_FILE)
