"""PAT scope facts shared by config, client, inventory and emulator (contract §7.1)."""

from __future__ import annotations

import pytest

from patwarden.domain.scopes import (
    ENTRA_ONLY_SCOPES,
    FULL_ACCESS_SCOPE,
    KNOWN_PAT_SCOPES,
    PAT_SCOPES,
    scope_allows,
)


def test_the_known_list_has_full_access_and_no_entra_only_permission() -> None:
    assert FULL_ACCESS_SCOPE in KNOWN_PAT_SCOPES
    assert {"vso.code", "vso.packaging_write", "vso.variablegroups_manage"} <= KNOWN_PAT_SCOPES
    assert not ENTRA_ONLY_SCOPES & KNOWN_PAT_SCOPES
    # Entra permissions that Azure DevOps refuses on a PAT (invalidScope), each one named.
    assert {"vso.pats", "vso.pats_manage", "user_impersonation"} == ENTRA_ONLY_SCOPES


def test_the_sign_in_asks_entra_for_the_two_pat_lifecycle_scopes() -> None:
    resource = "499b84ac-1321-427f-aa17-267ca6975798"  # Azure DevOps (contract §2)
    assert (f"{resource}/vso.pats", f"{resource}/vso.pats_manage") == PAT_SCOPES


@pytest.mark.parametrize(
    ("granted", "needed", "allowed"),
    [
        ("vso.variablegroups_manage", "vso.variablegroups_read", True),
        ("vso.variablegroups_write", "vso.variablegroups_read", True),
        ("vso.variablegroups_read", "vso.variablegroups_manage", False),
        ("vso.project_manage", "vso.project", True),
        ("vso.serviceendpoint_manage", "vso.serviceendpoint", True),
        ("vso.code", "vso.code_write", False),
        ("app_token", "vso.serviceendpoint_manage", True),
        ("vso.codex", "vso.code", False),
        ("vso.serviceendpoint", "vso.serviceendpoint_query", False),  # plain is the weakest
        ("vso.build_execute", "vso.build", True),
        ("vso.code_manage", "vso.code_full", False),  # _full tops _manage
        ("vso.code_full", "vso.code_manage", True),
        ("vso.serviceendpoint_read", "vso.serviceendpoint_query", False),  # _read is the weakest
    ],
)
def test_scope_inheritance(granted: str, needed: str, allowed: bool) -> None:
    assert scope_allows(frozenset(granted.split()), needed) is allowed
