"""One object holding every Azure DevOps API client for one identity."""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING

import httpx

from patwarden.azdo.constants import DEFAULT_SCOPE, PAT_SCOPES
from patwarden.azdo.graph import GraphClient
from patwarden.azdo.pats import PatClient
from patwarden.azdo.ratelimit import RateLimiter
from patwarden.azdo.service_endpoints import ServiceEndpointClient
from patwarden.azdo.token_admin import TokenAdminClient
from patwarden.azdo.transport import DEFAULT_TIMEOUT, AzdoTransport, RetryPolicy, ServiceUrls
from patwarden.azdo.variable_groups import VariableGroupClient
from patwarden.azdo.verify import PatVerification, PatVerifier
from patwarden.secret import Secret

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential


class AzureDevOpsClient:
    """The PAT, Token Admin, Graph, variable group and service connection APIs for one identity.

    Thread-safe: share one instance across a worker pool. *credential* provides Entra tokens:
    PAT calls ask for *pat_scopes* (``vso.pats`` + ``vso.pats_manage``), every other call for
    *default_scopes*. Pass the identity's shared *rate_limiter* (see ``RateLimiterRegistry``) so
    every client of that identity pauses together. *http_transport* replaces the network in tests.
    """

    def __init__(
        self,
        *,
        credential: TokenCredential | None,
        urls: ServiceUrls | None = None,
        ca_bundle: str | os.PathLike[str] | None = None,
        retry: RetryPolicy | None = None,
        rate_limiter: RateLimiter | None = None,
        default_scopes: tuple[str, ...] = (DEFAULT_SCOPE,),
        pat_scopes: tuple[str, ...] = PAT_SCOPES,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        http_transport: httpx.BaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.urls = urls or ServiceUrls()
        self.transport = AzdoTransport(
            credential=credential,
            ca_bundle=ca_bundle,
            retry=retry,
            rate_limiter=rate_limiter,
            timeout=timeout,
            http_transport=http_transport,
            rng=rng,
        )
        t, u = self.transport, self.urls
        self.pats = PatClient(transport=t, urls=u, scopes=pat_scopes)
        self.token_admin = TokenAdminClient(transport=t, urls=u, scopes=default_scopes)
        self.graph = GraphClient(transport=t, urls=u, scopes=default_scopes)
        self.variable_groups = VariableGroupClient(transport=t, urls=u, scopes=default_scopes)
        self.service_endpoints = ServiceEndpointClient(transport=t, urls=u, scopes=default_scopes)
        self._verifier = PatVerifier(transport=t, urls=u)

    def verify_pat(self, *, org: str, pat: Secret, scopes: Sequence[str]) -> PatVerification:
        """Check that *pat* works in *org* (see :mod:`patwarden.azdo.verify` for the endpoint).

        Raises:
            ConfigError | AzdoNotFound | AzdoServerError | AzdoRateLimited | AzdoConnectionError:
                when no verdict can be had; an invalid PAT is a result, not an error.
        """
        return self._verifier.verify_pat(org=org, pat=pat, scopes=scopes)

    def close(self) -> None:
        """Close pooled connections."""
        self.transport.close()

    def __enter__(self) -> AzureDevOpsClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
