"""Authorization codes (auth code flow with PKCE): issue once, redeem once, verify the verifier.

A code is stored as a SHA-256 hash with what it was issued for: client, redirect URI, scope, the
user who signed in, when, whether MFA was done, the PKCE challenge and the nonce. Codes live ten
minutes, like Entra's. Redemption refuses a wrong or missing ``code_verifier`` as Entra does
(AADSTS50148), a second redemption (AADSTS54005), an expired code (AADSTS70008) and a code issued
to another client or redirect URI (AADSTS70000).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass

from patwarden_emulator.entra.errors import AadError, invalid_grant
from patwarden_emulator.store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS entra_auth_codes (
    code_sha256 TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    user_oid TEXT NOT NULL,
    auth_time REAL NOT NULL,
    mfa INTEGER NOT NULL,
    code_challenge TEXT,
    code_challenge_method TEXT,
    nonce TEXT,
    expires_at REAL NOT NULL,
    redeemed INTEGER NOT NULL DEFAULT 0
);
"""
CODE_LIFETIME = 600


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def s256(verifier: str) -> str:
    """The S256 code challenge of *verifier* (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(frozen=True)
class CodeGrant:
    """What an authorization code stands for (never the code itself)."""

    client_id: str
    redirect_uri: str
    scope: str
    user_oid: str
    auth_time: float
    mfa: bool
    nonce: str | None


@dataclass(frozen=True)
class Challenge:
    """The PKCE challenge of an authorization request."""

    value: str | None
    method: str | None


class AuthCodes:
    """The authorization-code table."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.ensure_schema(SCHEMA)

    def issue(self, grant: CodeGrant, challenge: Challenge) -> str:
        """Store a new code for *grant*; return the code."""
        code = "1.A" + secrets.token_urlsafe(96)
        self.store.execute(
            "INSERT INTO entra_auth_codes (code_sha256, client_id, redirect_uri, scope, user_oid,"
            " auth_time, mfa, code_challenge, code_challenge_method, nonce, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                _digest(code),
                grant.client_id,
                grant.redirect_uri,
                grant.scope,
                grant.user_oid,
                grant.auth_time,
                int(grant.mfa),
                challenge.value,
                challenge.method,
                grant.nonce,
                time.time() + CODE_LIFETIME,
            ),
        )
        return code

    def redeem(
        self, *, code: str, client_id: str, redirect_uri: str | None, verifier: str | None
    ) -> CodeGrant:
        """Exchange *code* once.

        Raises:
            AadError: unknown, foreign, reused or expired code; PKCE verifier wrong or missing.
        """
        with self.store.transaction():
            row = self.store.one(
                "SELECT * FROM entra_auth_codes WHERE code_sha256 = ?", (_digest(code),)
            )
            if row is None or row["client_id"] != client_id:
                raise invalid_grant(70000, "Provided grant is invalid or malformed.")
            if row["redeemed"]:
                raise invalid_grant(54005, "OAuth2 Authorization code was already redeemed.")
            if time.time() > row["expires_at"]:
                raise invalid_grant(
                    70008,
                    "The provided authorization code or refresh token has expired due to "
                    "inactivity. Send a new interactive authorization request for this user "
                    "and resource.",
                )
            if redirect_uri != row["redirect_uri"]:
                raise invalid_grant(
                    70000,
                    "The provided value for the input parameter 'redirect_uri' does not match "
                    "the one the authorization code was issued for.",
                )
            _verify_pkce(row["code_challenge"], row["code_challenge_method"], verifier)
            self.store.execute(
                "UPDATE entra_auth_codes SET redeemed = 1 WHERE code_sha256 = ?", (_digest(code),)
            )
            return CodeGrant(
                client_id=row["client_id"],
                redirect_uri=row["redirect_uri"],
                scope=row["scope"],
                user_oid=row["user_oid"],
                auth_time=row["auth_time"],
                mfa=bool(row["mfa"]),
                nonce=row["nonce"],
            )

    def clear(self) -> None:
        """Forget every code (emulator reset)."""
        self.store.execute("DELETE FROM entra_auth_codes")


def _verify_pkce(challenge: str | None, method: str | None, verifier: str | None) -> None:
    if challenge is None:
        return
    if not verifier:
        raise AadError(
            50148,
            "invalid_grant",
            "The code_verifier does not match the code_challenge supplied in the authorization "
            "request for PKCE (no code_verifier was sent).",
        )
    computed = verifier if method == "plain" else s256(verifier)
    if not secrets.compare_digest(computed, challenge):
        raise AadError(
            50148,
            "invalid_grant",
            "The code_verifier does not match the code_challenge supplied in the authorization "
            "request for PKCE.",
        )
