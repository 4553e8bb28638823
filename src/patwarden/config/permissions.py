"""Warn about configuration and secret files that others may read (like certbot).

Used by the loader and by :mod:`patwarden.identity.secret_refs`, which must not import the loader.
"""

from __future__ import annotations

import logging
import stat
from pathlib import Path

__all__ = ["warn_if_readable_by_others"]

log = logging.getLogger("patwarden.config.loader")  # the logger these warnings always used


def warn_if_readable_by_others(path: Path, *, what: str) -> None:
    """Log a warning when ``path`` can be read by its group or by others."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "%s %s is accessible by group or others (mode %o); restrict it with `chmod 600 %s`",
            what,
            path,
            stat.S_IMODE(mode),
            path,
        )
