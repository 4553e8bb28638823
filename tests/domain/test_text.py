"""Control characters from outside made visible (display names, owner names, scopes)."""

from __future__ import annotations

import pytest

from patwarden.domain.text import visible_controls


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain name", "plain name"),
        ("a\x1b[2Jb", "a\\x1b[2Jb"),  # clear screen
        ("line\nbreak", "line\\x0abreak"),  # a newline is escaped unless asked to keep it
        ("tab\there", "tab\\x09here"),
        ("\x9b31m", "\\x9b31m"),  # C1 CSI
        ("evil\u202etxt.exe", "evil\\u202etxt.exe"),  # bidirectional override
        ("\u2066x\u2069", "\\u2066x\\u2069"),
    ],
)
def test_every_control_character_is_shown_as_an_escape(raw: str, shown: str) -> None:
    assert visible_controls(raw) == shown


def test_keep_newlines_leaves_only_the_newline_alone() -> None:
    assert visible_controls("a\nb\x1b", keep_newlines=True) == "a\nb\\x1b"
    assert visible_controls("a\rb", keep_newlines=True) == "a\\x0db"
