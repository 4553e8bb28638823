"""The display-name marker: round trip, and tolerance of anything that is not ours."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patwarden.domain.marker import Marker, format_marker, is_valid_token_name, parse_marker

OP = "0123456789abcdef" * 2


def test_round_trip() -> None:
    name = format_marker(token_name="flux-git", operation_id=OP)
    assert name == f"patwarden:flux-git:{OP}"
    assert parse_marker(name) == Marker(token_name="flux-git", operation_id=OP)


@pytest.mark.parametrize(
    "display_name",
    [
        None,
        "",
        "ci-feed-reader-2026-06",
        "patwarden",
        "patwarden:flux-git",
        f"patwarden:flux-git:{OP}:extra",
        f"Patwarden:flux-git:{OP}",
        f"patwarden::{OP}",
        f"patwarden:flux git:{OP}",
        "patwarden:flux-git:not-an-operation-id",
        f"patwarden:flux-git:{OP.upper()}",
        f"other:flux-git:{OP}",
    ],
)
def test_anything_not_ours_parses_to_none(display_name: str | None) -> None:
    assert parse_marker(display_name) is None


@given(st.text(max_size=80))
def test_parse_never_raises(text: str) -> None:
    marker = parse_marker(text)
    if marker is not None:
        assert str(marker) == text


@pytest.mark.parametrize(
    ("name", "ok"), [("a", True), ("flux.git_2-x", True), ("-x", False), ("a:b", False)]
)
def test_token_names(name: str, ok: bool) -> None:
    assert is_valid_token_name(name) is ok


def test_format_refuses_what_it_cannot_represent() -> None:
    with pytest.raises(ValueError, match="token name"):
        format_marker(token_name="a:b", operation_id=OP)
    with pytest.raises(ValueError, match="operation id"):
        format_marker(token_name="a", operation_id="xyz")
