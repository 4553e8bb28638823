"""AADSTS codes → cause and fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import patwarden
from patwarden.identity.aadsts import KNOWN_CODES, error_codes, explain


@pytest.mark.parametrize(
    ("code", "words", "needs_login"),
    [
        (700082, "90 days", True),
        (50173, "revoked", True),
        (70043, "sign-in frequency", True),
        (50076, "multi-factor", True),
        (50079, "register", True),
        (53003, "Conditional Access", True),
        (65001, "consent", True),
        (7000215, "client secret is invalid", False),
        (7000222, "expired", False),
        (700016, "not found in the tenant", False),
        (90002, "tenant was not found", False),
    ],
)
def test_known_codes(code: int, words: str, needs_login: bool) -> None:
    explanation = explain({"error": "invalid_grant", "error_codes": [code]})
    assert explanation.code == code
    assert words in explanation.cause
    assert explanation.needs_login is needs_login
    assert explanation.anchor.endswith(f"identities.md#aadsts{code}")


def test_every_login_fix_names_the_identity_placeholder() -> None:
    for explanation in KNOWN_CODES.values():
        if explanation.needs_login:
            fixed = explanation.fix.format(identity="rotator")
            assert "patwarden login --identity rotator" in fixed


def test_code_is_found_in_the_description_when_error_codes_is_absent() -> None:
    result = {"error": "invalid_grant", "error_description": "AADSTS50173: The grant was revoked."}
    assert error_codes(result) == (50173,)
    assert explain(result).code == 50173


def test_unknown_code_is_generic_but_names_the_code() -> None:
    explanation = explain({"error": "invalid_grant", "error_codes": [9999999]})
    assert explanation.code == 9999999
    assert "AADSTS9999999" in explanation.cause
    assert "invalid_grant" in explanation.cause
    assert explanation.needs_login is True
    assert explanation.anchor.endswith("identities.md#troubleshooting")


@pytest.mark.parametrize("error", ["temporarily_unavailable", "server_error"])
def test_transient_errors_do_not_ask_for_a_login(error: str) -> None:
    explanation = explain({"error": error, "error_codes": [90033]})
    assert explanation.needs_login is False
    assert "retry later" in explanation.fix


def test_no_code_at_all() -> None:
    explanation = explain({"error": "invalid_grant"})
    assert explanation.code is None
    assert "invalid_grant" in explanation.cause


def test_first_known_code_wins() -> None:
    assert explain({"error_codes": [123, 700082]}).code == 700082


def _anchors(markdown: str) -> set[str]:
    ids = set(re.findall(r'<a id="([^"]+)"></a>', markdown))
    for heading in re.findall(r"^#+ (.+)$", markdown, re.MULTILINE):
        ids.add(re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-"))
    return ids


def test_every_docs_link_in_error_messages_lands_on_an_anchor() -> None:
    src = Path(patwarden.__file__).parent
    docs = src.parent.parent / "docs"
    sources = [
        *sorted((src / "identity").glob("*.py")),
        *sorted(src.glob("config*.py")),
    ]
    linked = {
        (page, anchor)
        for path in sources
        for page, anchor in re.findall(
            r"(identities|configuration)\.md#([a-z0-9-]+)(?![a-z0-9{-])", path.read_text()
        )
    }
    linked |= {("identities", f"aadsts{code}") for code in KNOWN_CODES}
    assert ("identities", "troubleshooting") in linked
    missing = {
        f"{page}.md#{anchor}"
        for page, anchor in linked
        if anchor not in _anchors((docs / f"{page}.md").read_text())
    }
    assert missing == set()
