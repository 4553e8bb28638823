"""What every Azure DevOps REST client of one resource shares: the transport it sends through,
the organization's service URLs and the bearer scopes it signs requests with."""

from __future__ import annotations

from patwarden.azdo.constants import DEFAULT_SCOPE
from patwarden.azdo.transport import AzdoTransport, Bearer, ServiceUrls


class ResourceClient:
    """The base of the per-resource clients (thread-safe: it holds no per-request state)."""

    def __init__(
        self,
        *,
        transport: AzdoTransport,
        urls: ServiceUrls,
        scopes: tuple[str, ...] = (DEFAULT_SCOPE,),
    ) -> None:
        self._transport = transport
        self._urls = urls
        self._auth = Bearer(scopes)
