"""Reading an HTTP answer whole, capped in size and in time, for patwarden's httpx clients.

Each socket read has its own timeout, so a server that drips one byte at a time never trips it,
and an endless body would fill memory. :func:`read_whole` sends a request, streams its answer and
fails like a transport error (:class:`ResponseTooLarge`, :class:`ResponseTooSlow`) when the answer
is larger than *max_bytes* or still arriving *deadline* seconds after it was sent: callers retry
it, or report it, like any answer that never came. The Azure DevOps transport and the Key Vault
client both read every answer through it.
"""

from __future__ import annotations

import time

import httpx

__all__ = ["ResponseTooLarge", "ResponseTooSlow", "read_whole"]

# Headers of the streamed answer that no longer describe the body once it is read and decoded.
_BODY_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class ResponseTooLarge(httpx.RemoteProtocolError):
    """The answer's body was larger than any real answer (an endless or hostile body)."""


class ResponseTooSlow(httpx.ReadTimeout):
    """The answer kept arriving, too slowly to finish within the deadline (a dripping server)."""


def read_whole(
    client: httpx.Client, request: httpx.Request, *, max_bytes: int, deadline: float
) -> httpx.Response:
    """Send *request* and return its answer with the whole body read, within the bounds.

    Raises:
        httpx.TransportError: no (complete) answer, including :class:`ResponseTooLarge` and
            :class:`ResponseTooSlow`.
    """
    until = time.monotonic() + deadline
    streamed = client.send(request, stream=True)
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in streamed.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise ResponseTooLarge(
                    f"the answer was larger than {max_bytes >> 20} MiB", request=request
                )
            if time.monotonic() > until:
                raise ResponseTooSlow(
                    f"the answer was still arriving after {deadline:g} s", request=request
                )
            chunks.append(chunk)
    finally:
        streamed.close()
    kept = [(k, v) for k, v in streamed.headers.multi_items() if k.lower() not in _BODY_HEADERS]
    return httpx.Response(
        streamed.status_code,
        headers=kept,
        content=b"".join(chunks),
        request=request,
        extensions=streamed.extensions,
    )
