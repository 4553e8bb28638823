"""TLS settings shared by every HTTP client patwarden builds.

Verification is always on. A custom CA bundle (the emulator's, or a TLS-inspecting proxy's) is an
explicit setting that **adds** trust to the default store (certifi's public CAs, as httpx uses,
plus the system's); it never replaces it and never turns checks off. httpx 0.28 wants an
``SSLContext`` rather than a path, so build one per bundle and reuse it; clients built on
``requests`` (the Azure SDK, MSAL) take a path, which would *replace* their store, so they get
:func:`requests_verify`: one PEM file with the default CAs and the bundle together, which
:mod:`patwarden.tls.requests_adapter` verifies with the same context as httpx. Without a bundle,
every httpx client gets one process-wide context with httpx's default trust.
"""

from __future__ import annotations

import atexit
import os
import shutil
import ssl
import tempfile
from functools import lru_cache
from pathlib import Path

from patwarden.errors import ConfigError


def _default_ca_files(*, system: bool = True) -> list[str]:
    """certifi's bundle (what httpx and requests trust by default) and, if *system*, the
    system's CA file."""
    files = []
    try:
        import certifi

        files.append(certifi.where())
    except ImportError:  # pragma: no cover - httpx and requests both depend on certifi
        pass
    cafile = ssl.get_default_verify_paths().cafile
    if system and cafile and os.path.isfile(cafile):
        files.append(cafile)
    return files


def _unusable(ca_bundle: str, err: Exception) -> ConfigError:
    return ConfigError(
        f"Cannot use CA bundle {ca_bundle!r}: {err}.",
        hint="Point ca_bundle at a readable PEM file with the CA certificate(s).",
    )


@lru_cache(maxsize=8)
def _context_for(ca_bundle: str) -> ssl.SSLContext:
    # The system store, when it has one: loaded here already, so not a second time below
    # (each of the two ~150-certificate files costs a process start ~20 ms).
    context = ssl.create_default_context()
    try:
        for default in _default_ca_files(system=False):
            context.load_verify_locations(cafile=default)
        context.load_verify_locations(cafile=ca_bundle)  # added to the defaults, never instead
    except (OSError, ssl.SSLError) as err:
        raise _unusable(ca_bundle, err) from None
    return context


@lru_cache(maxsize=1)
def _default_context() -> ssl.SSLContext:
    # httpx's own default (certifi, or SSL_CERT_FILE / SSL_CERT_DIR), built once per process:
    # given ``verify=True``, every transport (one per worker thread) parsed certifi again.
    from httpx import create_ssl_context

    return create_ssl_context(verify=True)


def ssl_context(ca_bundle: str | os.PathLike[str] | None) -> ssl.SSLContext:
    """Return what to pass as httpx's ``verify=``: the process's one context trusting the
    default store (what httpx's ``verify=True`` trusts: certifi, or ``SSL_CERT_FILE``), or, for
    *ca_bundle*, the default CAs and the bundle. Verification is always on.

    Raises:
        ConfigError: the bundle cannot be read or holds no usable certificate.
    """
    if not ca_bundle:
        return _default_context()
    return _context_for(str(Path(ca_bundle).expanduser().resolve()))


_bundle_of: dict[str, str] = {}  # a requests_verify() file -> the bundle it was made for
_written: list[str] = []  # the directories of those files


def remove_files() -> None:
    """Remove the :func:`requests_verify` files this process wrote. Runs at exit; a process
    that leaves through ``os._exit`` (``serve`` past its shutdown timeout) calls it first."""
    while _written:
        shutil.rmtree(_written.pop(), ignore_errors=True)


atexit.register(remove_files)


def context_of_requests_verify(verify: str) -> ssl.SSLContext | None:
    """The context :func:`ssl_context` built for the bundle whose :func:`requests_verify` file
    is *verify* (the same certificates), or None for any other file: requests-based clients
    then verify with it too instead of parsing the same ~300 certificates a second time."""
    bundle = _bundle_of.get(verify)
    return None if bundle is None else _context_for(bundle)


@lru_cache(maxsize=8)
def _combined_file(ca_bundle: str) -> str:
    _context_for(ca_bundle)  # the same checks (a readable PEM with a certificate) and errors
    directory = tempfile.mkdtemp(prefix="patwarden-ca-")  # 0700; public certificates only
    _written.append(directory)
    combined = Path(directory, "ca-bundle.pem")
    parts = [Path(path).read_bytes() for path in (*_default_ca_files(), ca_bundle)]
    combined.write_bytes(b"\n".join(part.rstrip(b"\n") for part in parts) + b"\n")
    _bundle_of[str(combined)] = ca_bundle
    return str(combined)


def requests_verify(ca_bundle: str | os.PathLike[str] | None) -> str | bool:
    """What to pass as ``verify`` / ``connection_verify`` to a requests-based client.

    True without a bundle; else the path of a PEM file holding the default CAs *and* the bundle,
    so the bundle adds trust there too (requests would use a path instead of its store).

    Raises:
        ConfigError: the bundle cannot be read or holds no usable certificate.
    """
    if not ca_bundle:
        return True
    return _combined_file(str(Path(ca_bundle).expanduser().resolve()))
