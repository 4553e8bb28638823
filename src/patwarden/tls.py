"""TLS settings shared by every HTTP client patwarden builds.

Verification is always on. A custom CA bundle (the emulator's, or a TLS-inspecting proxy's) is an
explicit setting that adds trust; it never turns checks off. httpx 0.28 wants an ``SSLContext``
rather than a path, so build one per bundle and reuse it.
"""

from __future__ import annotations

import ssl
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=8)
def _context_for(ca_bundle: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_bundle)


def ssl_context(ca_bundle: str | Path | None) -> ssl.SSLContext | bool:
    """Return what to pass as httpx's ``verify=``: a context trusting *ca_bundle*, or True.

    Raises:
        FileNotFoundError: the bundle does not exist (callers turn it into a ConfigError).
    """
    if ca_bundle is None:
        return True
    return _context_for(str(Path(ca_bundle).expanduser().resolve()))
