"""Concurrent token requests of one scope set wait for a single fetch; other scopes do not wait."""

from __future__ import annotations

import threading
import time
from typing import Any

from azure.core.credentials import AccessToken

from patwarden.identity.single_flight import SingleFlightCredential


class _CachingCredential:
    """Like azure-identity: fetches (slowly) when nothing is cached, then answers from its cache."""

    def __init__(self) -> None:
        self.fetches: list[tuple[str, ...]] = []
        self.cache: dict[tuple[str, ...], AccessToken] = {}
        self.closed = False

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        if scopes not in self.cache:
            self.fetches.append(scopes)
            time.sleep(0.05)
            self.cache[scopes] = AccessToken(f"token-{len(self.fetches)}", 4_000_000_000)
        return self.cache[scopes]

    def close(self) -> None:
        self.closed = True


def _ask_together(credential: SingleFlightCredential, scopes: list[str]) -> list[str]:
    tokens: list[str] = []
    threads = [
        threading.Thread(target=lambda s=s: tokens.append(credential.get_token(s).token))
        for s in scopes
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tokens


def test_many_workers_asking_at_once_cause_one_fetch() -> None:
    inner = _CachingCredential()
    credential = SingleFlightCredential(inner)
    tokens = _ask_together(credential, ["https://vault.azure.net/.default"] * 32)
    assert inner.fetches == [("https://vault.azure.net/.default",)]
    assert tokens == ["token-1"] * 32


def test_each_scope_set_is_fetched_once_and_info_goes_through_the_same_path() -> None:
    inner = _CachingCredential()
    credential = SingleFlightCredential(inner)
    _ask_together(credential, ["a/.default", "b/.default"] * 8)
    assert sorted(inner.fetches) == [("a/.default",), ("b/.default",)]
    info = credential.get_token_info("a/.default")
    assert info.token == credential.get_token("a/.default").token
    assert len(inner.fetches) == 2
    credential.close()
    assert inner.closed
