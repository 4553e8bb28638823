"""Unit tests of the Entra emulator's scope parsing and consent rules (no I/O)."""

from __future__ import annotations

import pytest

from patwarden.domain.scopes import AZURE_DEVOPS_RESOURCE
from patwarden_emulator.directory import KEY_VAULT_RESOURCE, App
from patwarden_emulator.entra.errors import AadError
from patwarden_emulator.entra.scopes import (
    delegated_grant,
    granted_scope_string,
    parse_scopes,
    require_default_only,
)

ADO = AZURE_DEVOPS_RESOURCE
APP = App(
    client_id="client",
    display_name="patwarden",
    sp_oid="sp",
    public_client=True,
    delegated_scopes=("vso.pats", "vso.pats_manage", "vso.graph"),
)


@pytest.mark.parametrize(
    ("raw", "audience", "permissions", "oidc"),
    [
        (f"{ADO}/vso.pats {ADO}/vso.pats_manage", ADO, ("vso.pats", "vso.pats_manage"), set()),
        (f"{ADO}/.default offline_access openid", ADO, (".default",), {"offline_access", "openid"}),
        ("https://app.vssps.visualstudio.com/vso.pats", ADO, ("vso.pats",), set()),
        (f"{KEY_VAULT_RESOURCE}/.default", KEY_VAULT_RESOURCE, (".default",), set()),
        (f"{ADO}/vso.pats {ADO}/vso.pats", ADO, ("vso.pats",), set()),
    ],
)
def test_parse_scopes(
    raw: str, audience: str, permissions: tuple[str, ...], oidc: set[str]
) -> None:
    parsed = parse_scopes(raw, tenant_id="t")
    assert (parsed.audience, parsed.permissions, set(parsed.oidc)) == (audience, permissions, oidc)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", 900144),
        ("openid offline_access", 70011),
        ("vso.pats", 70011),
        (f"{ADO}/vso.pats {KEY_VAULT_RESOURCE}/.default", 28000),
        ("https://graph.example/.default", 500011),
        (f"{ADO}/.default {ADO}/vso.pats", 70011),
    ],
)
def test_parse_scopes_refuses(raw: str, code: int) -> None:
    with pytest.raises(AadError) as caught:
        parse_scopes(raw, tenant_id="t")
    assert caught.value.code == code


def test_default_grants_every_consented_permission() -> None:
    request = parse_scopes(f"{ADO}/.default", tenant_id="t")
    granted = delegated_grant(request, app=APP)
    assert granted == APP.delegated_scopes
    assert granted_scope_string(request, granted).split() == [
        f"{ADO}/vso.pats",
        f"{ADO}/vso.pats_manage",
        f"{ADO}/vso.graph",
        f"{ADO}/.default",
    ]


@pytest.mark.parametrize(
    "raw",
    [
        f"{ADO}/vso.code",
        f"{KEY_VAULT_RESOURCE}/user_impersonation",
        f"{KEY_VAULT_RESOURCE}/.default",
    ],
)
def test_unconsented_permission_is_aadsts65001(raw: str) -> None:
    with pytest.raises(AadError) as caught:
        delegated_grant(parse_scopes(raw, tenant_id="t"), app=APP)
    assert (caught.value.code, caught.value.error, caught.value.suberror) == (
        65001,
        "invalid_grant",
        "consent_required",
    )


@pytest.mark.parametrize("raw", [f"{ADO}/vso.pats", f"{ADO}/.default offline_access"])
def test_client_credentials_need_default_alone(raw: str) -> None:
    with pytest.raises(AadError) as caught:
        require_default_only(parse_scopes(raw, tenant_id="t"))
    assert caught.value.code == 1002012


def test_client_credentials_accept_default() -> None:
    require_default_only(parse_scopes(f"{ADO}/.default", tenant_id="t"))
