"""AADSTS codes → cause and fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import patwarden
from patwarden.identity.aadsts import (
    DEVICE_CODE_REQUEST,
    DEVICE_CODE_SESSION,
    KNOWN_CODES,
    error_codes,
    explain,
)


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


@pytest.mark.parametrize("code", [53000, 53001, 530084, 50057, 50078, 50133, 53003, 50173])
def test_conditional_access_outcomes_need_a_human_and_have_their_own_row(code: int) -> None:
    """These become ReloginRequired (exit 3; the service's re-login notification)."""
    explanation = explain({"error": "invalid_grant", "error_codes": [code]})
    assert explanation.code == code
    assert explanation.needs_login is True
    assert explanation.anchor.endswith(f"identities.md#aadsts{code}")


def test_53003_depends_on_where_it_came_from() -> None:
    refused = {"error": "invalid_grant", "error_codes": [53003]}
    request = explain(refused, context=DEVICE_CODE_REQUEST)
    session = explain(refused, context=DEVICE_CODE_SESSION)
    plain = explain(refused)
    assert "blocks the device-code flow" in request.cause
    assert "--browser" in request.fix
    assert "this sign-in was made with a device code" in session.cause
    assert "--browser" in session.fix
    assert "a location outside the allowed networks" in plain.cause
    assert request.anchor.endswith("#device-code-blocked")
    assert session.anchor.endswith("#device-code-blocked")
    assert plain.anchor.endswith("#aadsts53003")
