from __future__ import annotations

import pytest

from patwarden.azdo.errors import (
    PAT_TOKEN_ERRORS,
    PatAccessDenied,
    PatApiError,
    PatNotFound,
    PatNotModifiable,
    PatPolicyViolation,
    PatRequestRejected,
    PatServiceFailure,
    UnknownPatError,
    pat_error,
    sanitize_server_text,
)
from patwarden.errors import AuthError, AzureDevOpsError

# Contract §1.7: the 7.2 spec's 37 values, in spec order.
SPEC_VALUES = [
    "none",
    "displayNameRequired",
    "invalidDisplayName",
    "invalidValidTo",
    "invalidScope",
    "userIdRequired",
    "invalidUserId",
    "invalidUserType",
    "accessDenied",
    "failedToIssueAccessToken",
    "invalidClient",
    "invalidClientType",
    "invalidClientId",
    "invalidTargetAccounts",
    "hostAuthorizationNotFound",
    "authorizationNotFound",
    "failedToUpdateAccessToken",
    "sourceNotSupported",
    "invalidSourceIP",
    "invalidSource",
    "duplicateHash",
    "sshPolicyDisabled",
    "invalidToken",
    "tokenNotFound",
    "invalidAuthorizationId",
    "failedToReadTenantPolicy",
    "globalPatPolicyViolation",
    "fullScopePatPolicyViolation",
    "patLifespanPolicyViolation",
    "invalidTokenType",
    "invalidAudience",
    "invalidSubject",
    "deploymentHostNotSupported",
    "disablePatCreationPolicyViolation",
    "failedToReadOrgPolicy",
    "globalPATCreationBlocked",
    "expiredPatCannotBeExtended",
]

EXPECTED_CLASS = {
    "displayNameRequired": PatRequestRejected,
    "invalidDisplayName": PatRequestRejected,
    "invalidValidTo": PatRequestRejected,
    "invalidScope": PatRequestRejected,
    "userIdRequired": PatAccessDenied,
    "invalidUserId": PatAccessDenied,
    "invalidUserType": PatAccessDenied,
    "accessDenied": PatAccessDenied,
    "failedToIssueAccessToken": PatServiceFailure,
    "invalidClient": PatAccessDenied,
    "invalidClientType": PatAccessDenied,
    "invalidClientId": PatAccessDenied,
    "invalidTargetAccounts": PatRequestRejected,
    "hostAuthorizationNotFound": PatNotFound,
    "authorizationNotFound": PatNotFound,
    "failedToUpdateAccessToken": PatServiceFailure,
    "sourceNotSupported": PatRequestRejected,
    "invalidSourceIP": PatAccessDenied,
    "invalidSource": PatRequestRejected,
    "duplicateHash": PatServiceFailure,
    "sshPolicyDisabled": PatPolicyViolation,
    "invalidToken": PatNotModifiable,
    "tokenNotFound": PatNotFound,
    "invalidAuthorizationId": PatRequestRejected,
    "failedToReadTenantPolicy": PatServiceFailure,
    "globalPatPolicyViolation": PatPolicyViolation,
    "fullScopePatPolicyViolation": PatPolicyViolation,
    "patLifespanPolicyViolation": PatPolicyViolation,
    "invalidTokenType": PatAccessDenied,
    "invalidAudience": PatAccessDenied,
    "invalidSubject": PatAccessDenied,
    "deploymentHostNotSupported": PatRequestRejected,
    "disablePatCreationPolicyViolation": PatPolicyViolation,
    "failedToReadOrgPolicy": PatServiceFailure,
    "globalPATCreationBlocked": PatPolicyViolation,
    "expiredPatCannotBeExtended": PatNotModifiable,
}

POLICIES = {
    "globalPatPolicyViolation": "restrict-global-pat",
    "globalPATCreationBlocked": "global-pat-retirement",
    "fullScopePatPolicyViolation": "restrict-full-scope-pat",
    "patLifespanPolicyViolation": "max-pat-lifespan",
    "disablePatCreationPolicyViolation": "restrict-pat-creation",
    "sshPolicyDisabled": "ssh-authentication",
}


def test_the_table_covers_exactly_the_37_spec_values_in_order() -> None:
    assert len(SPEC_VALUES) == 37
    assert tuple(SPEC_VALUES) == PAT_TOKEN_ERRORS
    assert set(EXPECTED_CLASS) == set(SPEC_VALUES) - {"none"}


def test_none_is_success() -> None:
    assert pat_error("none", action="create PAT 'x' in organization 'contoso'") is None


@pytest.mark.parametrize("code", SPEC_VALUES[1:])
def test_every_value_maps_to_an_actionable_error(code: str) -> None:
    error = pat_error(code, action="create PAT 'flux-git' in organization 'contoso'")
    assert type(error) is EXPECTED_CLASS[code]
    assert isinstance(error, AuthError if code in _auth_codes() else AzureDevOpsError)
    assert error.code == code  # type: ignore[union-attr]
    text = str(error)
    assert text.startswith("Azure DevOps refused to create PAT 'flux-git' in organization")
    assert f"patTokenError '{code}'" in text
    assert error.hint
    assert "Fix: " in text


def _auth_codes() -> set[str]:
    return {c for c, cls in EXPECTED_CLASS.items() if cls is PatAccessDenied}


@pytest.mark.parametrize(("code", "policy"), sorted(POLICIES.items()))
def test_policy_violations_name_the_policy_and_what_to_change(code: str, policy: str) -> None:
    error = pat_error(code, action="create PAT 'x' in organization 'contoso'")
    assert isinstance(error, PatPolicyViolation)
    assert error.policy == policy
    assert "policy" in error.message.lower() or "retire" in policy
    assert error.docs
    assert "policies" in error.docs


def test_lifespan_and_full_scope_hints_are_specific() -> None:
    lifespan = pat_error("patLifespanPolicyViolation", action="create PAT 'x'")
    full = pat_error("fullScopePatPolicyViolation", action="create PAT 'x'")
    assert lifespan is not None
    assert "lifetime" in (lifespan.hint or "")
    assert full is not None
    assert "explicit scopes" in (full.hint or "")


def test_unknown_future_values_name_the_value() -> None:
    error = pat_error("quantumEntanglementRequired", action="create PAT 'x'")
    assert isinstance(error, UnknownPatError)
    assert isinstance(error, PatApiError)
    assert "quantumEntanglementRequired" in str(error)
    assert "Upgrade patwarden" in str(error)


def test_server_message_is_included_but_sanitized() -> None:
    leaked = "eyJhbGciOi.eyJzdWIiOi.c2ln and abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH"
    error = pat_error("invalidScope", action="create PAT 'x'", server_message=f"Bad: {leaked}")
    assert error is not None
    assert "Server said: Bad:" in str(error)
    assert "eyJhbGciOi" not in str(error)
    assert "abcdefghijklmnopqrstuvwxyz0123456789" not in str(error)


def test_sanitize_shortens_and_strips_auth_headers() -> None:
    assert sanitize_server_text("Authorization: Bearer abc.def") == "Authorization: [redacted]"
    long = sanitize_server_text("word " * 200, limit=50)
    assert len(long) == 50
    assert long.endswith("…")
    assert sanitize_server_text("multi\n  line\ttext") == "multi line text"
