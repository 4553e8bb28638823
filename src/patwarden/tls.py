"""TLS settings shared by every HTTP client patwarden builds.

Verification is always on. A custom CA bundle (the emulator's, or a TLS-inspecting proxy's) is an
explicit setting that adds trust; it never turns checks off. httpx 0.28 wants an ``SSLContext``
rather than a path, so build one per bundle and reuse it.
"""

from __future__ import annotations

import os
import ssl
from functools import lru_cache
from pathlib import Path

from patwarden.errors import ConfigError


@lru_cache(maxsize=8)
def _context_for(ca_bundle: str) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(
            f"Cannot use CA bundle {ca_bundle!r}: {err}.",
            hint="Point ca_bundle at a readable PEM file with the CA certificate(s).",
        ) from None


def ssl_context(ca_bundle: str | os.PathLike[str] | None) -> ssl.SSLContext | bool:
    """Return what to pass as httpx's ``verify=``: a context trusting *ca_bundle*, or True.

    True means the default trust store (certifi, or ``SSL_CERT_FILE``); never False.

    Raises:
        ConfigError: the bundle cannot be read or holds no usable certificate.
    """
    if not ca_bundle:
        return True
    return _context_for(str(Path(ca_bundle).expanduser().resolve()))
