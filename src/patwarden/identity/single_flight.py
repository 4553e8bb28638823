"""One token fetch at a time per scope: worker threads asking together wait for the first one.

azure-identity's credentials cache tokens, but when many worker threads ask for a token that is
not cached yet (the start of a run, or a refresh), each of them fetches its own from Entra: 64
workers sent up to 75 token requests where 3 do. :class:`SingleFlightCredential` wraps such a
credential so that calls for the same scopes (and claims, tenant, CAE) run one after another: the
first fetches, the others then find the token in the wrapped credential's cache. Calls for other
scopes are not held up.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken, AccessTokenInfo, TokenCredential

__all__ = ["SingleFlightCredential"]


class SingleFlightCredential:
    """A ``TokenCredential`` (and ``SupportsTokenInfo``) that serialises fetches per scope set."""

    def __init__(self, credential: TokenCredential) -> None:
        self.inner = credential
        self._lock = threading.Lock()
        self._locks: dict[Hashable, threading.Lock] = {}

    def __repr__(self) -> str:
        return f"SingleFlightCredential({type(self.inner).__name__})"

    def _flight(self, key: Hashable) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(key, threading.Lock())

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """The wrapped credential's token for *scopes*, fetched by one caller at a time."""
        with self._flight(("token", scopes, claims, tenant_id, enable_cae)):
            return self.inner.get_token(
                *scopes, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae, **kwargs
            )

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        """The same through the newer protocol (the wrapped credential's, else ``get_token``)."""
        from azure.core.credentials import AccessTokenInfo

        settings = dict(options or {})
        key = ("info", scopes, *sorted((k, repr(v)) for k, v in settings.items()))
        with self._flight(key):
            inner = getattr(self.inner, "get_token_info", None)
            if inner is not None:
                info: AccessTokenInfo = inner(*scopes, options=options)
                return info
            token = self.inner.get_token(*scopes, **settings)
            return AccessTokenInfo(token.token, token.expires_on)

    def close(self) -> None:
        """Close the wrapped credential."""
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> SingleFlightCredential:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
