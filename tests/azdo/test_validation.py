from __future__ import annotations

import uuid

import pytest

from patwarden.azdo import validation
from patwarden.errors import ConfigError


@pytest.mark.parametrize("name", ["contoso", "a", "ab", "Fabrikam-Prod-01", "x" * 50, "1org"])
def test_valid_organizations_pass_unchanged(name: str) -> None:
    assert validation.organization(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "-contoso",
        "contoso-",
        "x" * 51,
        "contoso/../admin",
        "contoso/_apis",
        "evil.example.com",
        "contoso@evil.example",
        "contoso?x=1",
        "contoso#frag",
        "con toso",
        "contoso\n",
        "https://dev.azure.com/contoso",
        "cöntoso",
    ],
)
def test_invalid_organizations_raise_config_error_naming_the_value(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        validation.organization(name)
    assert repr(name) in str(info.value)


@pytest.mark.parametrize(
    ("name", "encoded"),
    [
        ("infra", "infra"),
        ("Platform Team", "Platform%20Team"),
        ("données", "donn%C3%A9es"),
        ("a&b", "a%26b"),
        ("v1.2", "v1.2"),
        ("3f1c5d0e-3a1b-4c2d-9e8f-0a1b2c3d4e5f", "3f1c5d0e-3a1b-4c2d-9e8f-0a1b2c3d4e5f"),
    ],
)
def test_projects_are_percent_encoded(name: str, encoded: str) -> None:
    assert validation.project(name) == encoded


@pytest.mark.parametrize(
    "name",
    [
        "",
        "   ",
        "a/b",
        "a\\b",
        "..",
        "a..b",
        "tab\there",
        "nul\x00",
        "del\x7f",
        "q?x",
        "hash#x",
        "_hidden",
        ".dot",
        "trailing.",
        "x" * 65,
    ],
)
def test_bad_project_names_are_rejected(name: str) -> None:
    with pytest.raises(ConfigError, match="Invalid Azure DevOps project name"):
        validation.project(name)


def test_uuid_ids_are_canonicalised_and_garbage_rejected() -> None:
    value = uuid.UUID("4AB5764F-4193-4F1D-B995-64144880B7D7")
    assert validation.uuid_id(value, what="x") == "4ab5764f-4193-4f1d-b995-64144880b7d7"
    assert (
        validation.uuid_id("{4AB5764F-4193-4F1D-B995-64144880B7D7}", what="x")
        == "4ab5764f-4193-4f1d-b995-64144880b7d7"
    )
    with pytest.raises(ConfigError, match=r"Invalid authorization id '\.\./\.\./x'"):
        validation.uuid_id("../../x", what="authorization id")


@pytest.mark.parametrize("value", [0, -1, True, "12", 1.5])
def test_group_ids_must_be_positive_ints(value: object) -> None:
    with pytest.raises(ConfigError, match="variable group id"):
        validation.positive_int(value, what="variable group id")  # type: ignore[arg-type]


def test_descriptors() -> None:
    assert validation.descriptor("aad.N2QzYjA3ZjMtMjc0") == "aad.N2QzYjA3ZjMtMjc0"
    assert validation.descriptor("aad.ab+c=") == "aad.ab%2Bc%3D"
    for bad in ["aad/../x", "N2QzYjA3", "aad.", "aad.a b"]:
        with pytest.raises(ConfigError, match="subject descriptor"):
            validation.descriptor(bad)


def test_scopes_must_be_single_tokens() -> None:
    assert validation.pat_scopes(("vso.code", "vso.packaging_write")) == (
        "vso.code",
        "vso.packaging_write",
    )
    for bad in [(), ("vso.code vso.build",), ("",), ("vso/code",)]:
        with pytest.raises(ConfigError):
            validation.pat_scopes(bad)


@pytest.mark.parametrize(
    "url",
    [
        "http://dev.azure.com",
        "https://user:pw@dev.azure.com",
        "https://dev.azure.com/?x=1",
        "https://dev.azure.com/#x",
        "dev.azure.com",
        "https://",
    ],
)
def test_base_urls_must_be_plain_https(url: str) -> None:
    with pytest.raises(ConfigError, match="expected an https:// base URL"):
        validation.base_url(url, setting="azure_devops_url")


def test_base_url_trailing_slash_is_dropped() -> None:
    assert validation.base_url("https://127.0.0.1:8443/devops/", setting="x") == (
        "https://127.0.0.1:8443/devops"
    )
