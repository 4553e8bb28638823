"""PAT scope strings as the emulated Azure DevOps checks them (contract §7.1)."""

from __future__ import annotations

from patwarden.domain.scopes import FULL_ACCESS_SCOPE as FULL_ACCESS
from patwarden.domain.scopes import KNOWN_PAT_SCOPES, scope_allows

__all__ = ["FULL_ACCESS", "IMPERSONATION", "invalid_scopes", "scope_allows"]

IMPERSONATION = "user_impersonation"


def invalid_scopes(scope: str) -> list[str]:
    """The scope strings in a space-separated *scope* that a PAT cannot carry."""
    return [item for item in scope.split() if item not in KNOWN_PAT_SCOPES]
