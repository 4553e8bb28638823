"""Which config file a command reads: ``--config``, else ``$PATWARDEN_CONFIG``, else
``./patwarden.yaml``. Light to import (no YAML, no pydantic): ``status`` finds its snapshot of
the config by this path before it decides whether to load it (:mod:`patwarden.app.snapshot`).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from patwarden.errors import DOCS, ConfigError

__all__ = [
    "CONFIG_DOCS",
    "CONFIG_ENV_VAR",
    "DEFAULT_CONFIG_FILE",
    "MAX_CONFIG_BYTES",
    "read_config_bytes",
    "resolve_config_path",
]

CONFIG_DOCS = f"{DOCS}/configuration.md"
CONFIG_ENV_VAR = "PATWARDEN_CONFIG"
DEFAULT_CONFIG_FILE = "patwarden.yaml"
MAX_CONFIG_BYTES = 4 << 20  # a config is a few kilobytes; refuse to slurp /dev/zero or a log


def resolve_config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--config`` if given, else ``$PATWARDEN_CONFIG``, else ``./patwarden.yaml``."""
    if explicit:
        return Path(explicit).expanduser()
    from_env = os.environ.get(CONFIG_ENV_VAR)
    if from_env:
        return Path(from_env).expanduser()
    return Path(DEFAULT_CONFIG_FILE)


def read_config_bytes(path: Path) -> bytes:
    """The file's bytes, refusing what is not a small regular file (a FIFO never blocks).

    Raises:
        ConfigError: missing, not a regular file, too large or unreadable.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} not found",
            hint="pass --config FILE, set PATWARDEN_CONFIG, or create ./patwarden.yaml",
            docs=CONFIG_DOCS,
        ) from None
    except OSError as err:
        raise ConfigError(
            f"cannot read config file {path}: {err.strerror}",
            hint="check the path and that this user may read it",
        ) from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigError(
                f"config file {path} is not a regular file",
                hint="point --config or PATWARDEN_CONFIG at a YAML file",
                docs=CONFIG_DOCS,
            )
        data = handle.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"config file {path} is larger than {MAX_CONFIG_BYTES >> 20} MiB, which no "
            "patwarden configuration is",
            hint="check that --config points at the right file",
            docs=CONFIG_DOCS,
        )
    return data
