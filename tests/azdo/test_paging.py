"""The shared paging loop: same filters on every page, stop on an empty token, refuse bad ones."""

from __future__ import annotations

import httpx
import pytest

from patwarden.azdo.errors import AzdoUnexpectedResponse
from patwarden.azdo.paging import body_token, header_token, iter_page_items
from patwarden.azdo.transport import Bearer
from tests.azdo.conftest import MakeHarness, json_response

URL = "https://vssps.example/contoso/_apis/things"


def _items(h: object, *, next_token: object = body_token) -> list[object]:
    return list(
        iter_page_items(
            h.client.transport,  # type: ignore[attr-defined]
            URL,
            action="list things",
            api_version="7.1",
            auth=Bearer(("scope/.default",)),
            params={"filter": "x"},
            items_key="value",
            next_token=next_token,  # type: ignore[arg-type]
        )
    )


def test_follows_body_tokens_with_the_same_filters_until_empty(make_harness: MakeHarness) -> None:
    pages = {None: ([1, 2], "a"), "a": ([3], "b"), "b": ([4], "")}

    def handler(request: httpx.Request) -> httpx.Response:
        items, nxt = pages[request.url.params.get("continuationToken")]
        return json_response(200, {"value": items, "continuationToken": nxt})

    h = make_harness(handler)
    assert _items(h) == [1, 2, 3, 4]
    assert [r.url.params["filter"] for r in h.requests] == ["x", "x", "x"]


def test_follows_header_tokens(make_harness: MakeHarness) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("continuationToken") == "next":
            return json_response(200, {"value": [2]})
        return json_response(200, {"value": [1]}, headers={"X-MS-ContinuationToken": "next"})

    assert _items(make_harness(handler), next_token=header_token) == [1, 2]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"value": [], "continuationToken": 7}, "not a string"),
        ({"value": [], "continuationToken": "same"}, "came back twice"),
        ({"value": "oops"}, "'value' is not a list"),
    ],
)
def test_refuses_malformed_pages(make_harness: MakeHarness, body: object, message: str) -> None:
    h = make_harness(lambda request: json_response(200, body))
    with pytest.raises(AzdoUnexpectedResponse, match=message):
        _items(h)
