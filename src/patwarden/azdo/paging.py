"""The one paging loop every Azure DevOps listing uses (PATs, Token Admin, Graph users).

Each API pages differently only in where the items and the next continuation token are: the
loop sends the same filters on every page, stops when the token is empty or absent, and refuses a
malformed or repeated token instead of looping forever (contract §1.5, §3.1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from patwarden.azdo.models import as_object
from patwarden.azdo.responses import json_body, unexpected
from patwarden.azdo.transport import Auth, AzdoTransport

NextToken = Callable[[httpx.Response, Mapping[str, Any]], object]


def body_token(response: httpx.Response, page: Mapping[str, Any]) -> object:
    """The next token from the page body's ``continuationToken`` (PATs, Token Admin)."""
    return page.get("continuationToken")


def header_token(response: httpx.Response, page: Mapping[str, Any]) -> object:
    """The next token from the ``X-MS-ContinuationToken`` header (Graph)."""
    return response.headers.get("x-ms-continuationtoken", "").strip()


def iter_page_items(
    transport: AzdoTransport,
    url: str,
    *,
    action: str,
    api_version: str,
    auth: Auth,
    params: Mapping[str, object],
    items_key: str,
    next_token: NextToken,
) -> Iterator[Any]:
    """Yield the raw items of every page, following continuation tokens.

    Raises:
        AzdoUnexpectedResponse: a page is malformed, or a token is malformed or repeats.
    """
    continuation: str | None = None
    seen: set[str] = set()
    while True:
        response = transport.send(
            "GET",
            url,
            action=action,
            api_version=api_version,
            auth=auth,
            params={**params, "continuationToken": continuation},
        )
        page = as_object(json_body(response, action=action), what="a page", action=action)
        items = page.get(items_key, [])
        if not isinstance(items, list):
            raise unexpected(f"'{items_key}' is not a list", action=action)
        yield from items
        value = next_token(response, page)
        if value is None or value == "":
            return
        if not isinstance(value, str):
            raise unexpected("the continuation token is not a string", action=action)
        if value in seen:
            raise unexpected(f"the continuation token {value!r} came back twice", action=action)
        seen.add(value)
        continuation = value
