"""A requests adapter whose connections all verify with one SSL context, loaded once.

Given ``verify`` (a CA file, as :func:`patwarden.tls.requests_verify` returns: certifi's CAs, the
system's and a configured bundle, ~300 certificates), requests hands the path to urllib3, which
builds a new ``SSLContext`` and parses the whole file into it for *every new connection*, and
keeps that context (its parsed store, about a megabyte) for as long as the connection lives.
When the Key Vault sink used the SDK, a fleet run opened one connection per worker thread to each
vault: at 64 workers that was 64 parses (15-45 ms of CPU each) and most of the run's memory
beyond the interpreter. The requests-based clients left (MSAL and azure-identity, through
``identity/http.py``) still mount it.

:class:`SharedContextAdapter` gives urllib3 one context per CA file (built once per process by
:func:`context_for`, with urllib3's own defaults: TLS 1.2+, certificate and host name checks) and
keeps requests from asking for the file again. A request made with another ``verify`` than the
adapter's, or a CA file that cannot be loaded, gets requests' usual handling (and errors).
"""

from __future__ import annotations

import contextlib
import os
import ssl
import threading
from typing import Any
from urllib.parse import urlparse

import requests
from requests.adapters import HTTPAdapter

__all__ = ["SharedContextAdapter", "context_for"]

_contexts: dict[str, ssl.SSLContext] = {}
_contexts_lock = threading.Lock()


def context_for(verify: str | bool) -> ssl.SSLContext:
    """The process's context trusting *verify* (a CA file or directory; True: requests' default
    bundle, certifi), as urllib3 would build it for each connection. Verification stays on.

    Raises:
        OSError: the CA file cannot be read.
        ssl.SSLError: it holds no usable certificate.
    """
    from requests.utils import DEFAULT_CA_BUNDLE_PATH
    from urllib3.util.ssl_ import create_urllib3_context

    from patwarden.tls import context_of_requests_verify

    location = DEFAULT_CA_BUNDLE_PATH if verify is True else str(verify)
    with _contexts_lock:
        context = _contexts.get(location)
        if context is None:
            # A file patwarden.tls wrote for a bundle: the httpx clients' context holds the same
            # certificates and verifies the same way (hostname and chain), so share it.
            context = None if verify is True else context_of_requests_verify(location)
            if context is None:
                context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
                if os.path.isdir(location):
                    context.load_verify_locations(capath=location)
                else:
                    context.load_verify_locations(cafile=location)
            _contexts[location] = context
        return context


class SharedContextAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose connections verify with :func:`context_for` of *verify*."""

    def __init__(self, verify: str | bool, **kwargs: Any) -> None:
        if verify is False:
            raise ValueError("SharedContextAdapter verifies certificates: verify=False is refused")
        self.verify = verify
        self.ssl_context: ssl.SSLContext | None = None
        # A file that cannot be loaded: requests reports it, as before, when a request needs it.
        with contextlib.suppress(OSError, ssl.SSLError):
            self.ssl_context = context_for(verify)
        super().__init__(**kwargs)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """requests' pool key; for the adapter's *verify*, the shared context instead of the file
        (other pools never get it: urllib3 would load their file into it, widening its trust).
        requests would also stat the CA file on every request: the context already holds it."""
        if not self._ours(verify) or cert is not None:
            return super().build_connection_pool_key_attributes(request, verify, cert)
        url = urlparse(request.url)
        host = {"scheme": url.scheme.lower(), "host": url.hostname, "port": url.port}
        return host, {"cert_reqs": "CERT_REQUIRED", "ssl_context": self.ssl_context}

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        """requests' settings for *conn*, without making urllib3 load the CA file again."""
        if not self._ours(verify) or cert is not None or not url.lower().startswith("https"):
            super().cert_verify(conn, url, verify, cert)
            return
        conn.cert_reqs = "CERT_REQUIRED"
        conn.ca_certs = None
        conn.ca_cert_dir = None

    def _ours(self, verify: Any) -> bool:
        return self.ssl_context is not None and verify is not False and verify == self.verify
