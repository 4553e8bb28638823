"""Limits for the Azure SDK clients sinks use: every answer capped in size and in time.

azure-core's requests transport times out each socket read on its own, so a server that drips
one byte at a time holds a sink for as long as it likes, and an endless body fills memory.
:func:`bounded_transport` returns a ``RequestsTransport`` whose session checks every chunk of
every answer: more than :data:`MAX_ANSWER_BYTES`, or still arriving :data:`DEADLINE_READS` read
timeouts after the headers, and the read fails like a timeout (azure-core then retries it or
raises ``ServiceResponseError``, which the sinks translate as usual). Clients using it should
also pass ``retry_total=RETRY_TOTAL``: azure-core's default retries a slow server for minutes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests
    from azure.core.pipeline.transport import RequestsTransport

__all__ = [
    "CONNECT_TIMEOUT",
    "MAX_ANSWER_BYTES",
    "READ_TIMEOUT",
    "RETRY_TOTAL",
    "bounded_transport",
]

MAX_ANSWER_BYTES = 32 << 20  # a Key Vault answer is a few kilobytes
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0  # azure-core's default is 300 s per read
DEADLINE_READS = 4
RETRY_TOTAL = 3  # azure-core's default of 10 retries with exponential backoff takes minutes


class _BoundedRaw:
    """Wraps a urllib3 response: its ``stream`` stops at the size cap and the deadline."""

    def __init__(self, raw: Any, *, max_bytes: int, deadline: float, seconds: float) -> None:
        self._raw = raw
        self._max_bytes = max_bytes
        self._deadline = deadline
        self._seconds = seconds

    def stream(self, amt: int | None = None, decode_content: bool | None = None) -> Iterator[bytes]:
        """Yield the body like urllib3 does, within the limits.

        Raises:
            requests.exceptions.ReadTimeout: the body was too large or too slow.
        """
        import requests

        size = 0
        for chunk in self._chunks(amt, decode_content):
            size += len(chunk)
            problem = None
            if size > self._max_bytes:
                problem = f"the answer was larger than {self._max_bytes >> 20} MiB"
            elif time.monotonic() > self._deadline:
                problem = f"the answer was still arriving after {self._seconds:g} s"
            if problem:
                self._raw.close()  # the connection is unusable: do not leave it to the GC
                raise requests.exceptions.ReadTimeout(problem)
            yield chunk

    def _chunks(self, amt: int | None, decode_content: bool | None) -> Iterator[bytes]:
        raw = self._raw
        if getattr(raw, "chunked", False) and raw.supports_chunked_reads():
            yield from raw.stream(amt, decode_content=decode_content)  # one chunk at a time
            return
        # urllib3's stream() blocks until ``amt`` bytes arrived: a drip would never be seen.
        # read1() returns whatever one read of the socket brought.
        while data := raw.read1(amt, decode_content=decode_content):
            yield data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def bounded_transport(
    *, verify: str | bool, connections: int | None = None, url: str | None = None
) -> RequestsTransport:
    """A ``RequestsTransport`` (trusting ``verify``: a CA bundle path, or True) with the limits.

    *connections*: how many connections per host its pool keeps for reuse (requests' default,
    10, when None); a client shared by more worker threads than that would otherwise open (and
    TLS-handshake) a new connection for most requests. *url*: the one host the client talks to;
    the environment's proxy and CA settings for it (``HTTPS_PROXY``, ``NO_PROXY``,
    ``REQUESTS_CA_BUNDLE``) are then read once, here, instead of by requests on every request
    (which scans the whole environment each time).
    """
    import requests
    from azure.core.pipeline.transport import RequestsTransport

    from patwarden.tls.requests_adapter import SharedContextAdapter

    read_timeout, max_bytes = READ_TIMEOUT, MAX_ANSWER_BYTES  # read now: tests may lower them
    seconds = read_timeout * DEADLINE_READS

    def bound(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        # Runs after the headers arrived and before requests reads the body.
        response.raw = _BoundedRaw(
            response.raw, max_bytes=max_bytes, deadline=time.monotonic() + seconds, seconds=seconds
        )
        return response

    session = requests.Session()
    session.hooks["response"].append(bound)
    if url is not None:
        session.trust_env = False  # what it would read per request is read now, once
        session.proxies.update(requests.utils.get_environ_proxies(url))
        if verify is True:  # as requests does: the environment's bundle replaces its own
            verify = (
                os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
            )
    # One SSL context for every connection (urllib3 would parse the CA file for each one).
    adapter = SharedContextAdapter(
        verify, pool_connections=4, pool_maxsize=connections or requests.adapters.DEFAULT_POOLSIZE
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return RequestsTransport(
        session=session,
        session_owner=True,
        connection_timeout=CONNECT_TIMEOUT,
        read_timeout=read_timeout,
        connection_verify=verify,
    )
