"""Refresh tokens (stored as SHA-256 hashes) and the per-user sign-in policies that end them.

A refresh token stands for one interactive sign-in (``auth_time``) of one user in one client. Every
redemption returns a new token that inherits ``auth_time``; the old one stays valid (contract
§4.5). The admin API revokes (AADSTS50173) or expires (AADSTS700082) a user's tokens, sets a
sign-in frequency (AADSTS70043) or demands a fresh MFA sign-in (AADSTS50076).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from patwarden_emulator.store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS entra_refresh_tokens (
    token_sha256 TEXT PRIMARY KEY,
    user_oid TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    issued_at REAL NOT NULL,
    auth_time REAL NOT NULL,
    mfa INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    revoked_at REAL,
    expired INTEGER NOT NULL DEFAULT 0,
    flow TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS entra_refresh_tokens_user ON entra_refresh_tokens (user_oid);
CREATE TABLE IF NOT EXISTS entra_user_policies (
    user_oid TEXT PRIMARY KEY,
    sign_in_frequency_seconds INTEGER,
    mfa_reauth_after REAL
);
"""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_refresh_token() -> str:
    """A fresh opaque refresh token (shaped like Entra's ``0.A…`` tokens, length not guaranteed)."""
    return "0.A" + secrets.token_urlsafe(192)


@dataclass(frozen=True)
class RefreshGrant:
    """What a stored refresh token stands for (never the token itself)."""

    user_oid: str
    client_id: str
    scopes: str
    issued_at: float
    auth_time: float
    mfa: bool
    revoked: bool
    revoked_at: float | None
    expired: bool
    flow: str = ""  # how the session began: device_code, authorization_code, password


@dataclass(frozen=True)
class UserPolicy:
    """Conditional-Access-like rules the admin API sets on one user."""

    sign_in_frequency_seconds: int | None = None
    mfa_reauth_after: float | None = None


class Sessions:
    """The refresh-token and user-policy tables."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.ensure_schema(SCHEMA)
        columns = {row["name"] for row in store.query("PRAGMA table_info(entra_refresh_tokens)")}
        if "flow" not in columns:  # a state directory from before sessions remembered their flow
            store.execute(
                "ALTER TABLE entra_refresh_tokens ADD COLUMN flow TEXT NOT NULL DEFAULT ''"
            )
        # Continuous access evaluation: user oid -> access tokens issued before this are refused.
        self.cae_events: dict[str, float] = {}

    def remember(
        self,
        token: str,
        *,
        user_oid: str,
        client_id: str,
        scopes: str,
        auth_time: float,
        mfa: bool,
        flow: str = "",
    ) -> None:
        """Store the hash of a refresh token just issued (*flow*: how its session began)."""
        self.store.execute(
            "INSERT INTO entra_refresh_tokens (token_sha256, user_oid, client_id, scopes,"
            " issued_at, auth_time, mfa, flow) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (_digest(token), user_oid, client_id, scopes, time.time(), auth_time, int(mfa), flow),
        )

    def find(self, token: str) -> RefreshGrant | None:
        """Look a presented refresh token up by its hash."""
        row = self.store.one(
            "SELECT * FROM entra_refresh_tokens WHERE token_sha256 = ?", (_digest(token),)
        )
        if row is None:
            return None
        return RefreshGrant(
            user_oid=row["user_oid"],
            client_id=row["client_id"],
            scopes=row["scopes"],
            issued_at=row["issued_at"],
            auth_time=row["auth_time"],
            mfa=bool(row["mfa"]),
            revoked=bool(row["revoked"]),
            revoked_at=row["revoked_at"],
            expired=bool(row["expired"]),
            flow=row["flow"],
        )

    def revoke_user(self, user_oid: str) -> int:
        """Revoke every refresh token of a user ("revoke sessions"); return how many."""
        return self.store.execute(
            "UPDATE entra_refresh_tokens SET revoked = 1, revoked_at = ? "
            "WHERE user_oid = ? AND revoked = 0",
            (time.time(), user_oid),
        )

    def tokens_valid_from(self, user_oid: str) -> float | None:
        """Access tokens of *user_oid* issued before this are challenged (CAE), or None.

        The latest session revocation (admin revoke, password reset) or CAE event.
        """
        row = self.store.one(
            "SELECT MAX(revoked_at) AS at FROM entra_refresh_tokens WHERE user_oid = ?",
            (user_oid,),
        )
        times = [t for t in (row["at"] if row else None, self.cae_events.get(user_oid)) if t]
        return max(times) if times else None

    def expire_user(self, user_oid: str) -> int:
        """Mark every refresh token of a user as expired by inactivity; return how many."""
        return self.store.execute(
            "UPDATE entra_refresh_tokens SET expired = 1 WHERE user_oid = ? AND expired = 0",
            (user_oid,),
        )

    def count(self, user_oid: str) -> int:
        """How many refresh tokens were issued to a user (admin listing)."""
        row = self.store.one(
            "SELECT COUNT(*) AS n FROM entra_refresh_tokens WHERE user_oid = ?", (user_oid,)
        )
        return int(row["n"]) if row is not None else 0

    # policies ------------------------------------------------------------------------------
    def policy(self, user_oid: str) -> UserPolicy:
        """The user's sign-in policy (defaults: none)."""
        row = self.store.one("SELECT * FROM entra_user_policies WHERE user_oid = ?", (user_oid,))
        if row is None:
            return UserPolicy()
        return UserPolicy(
            sign_in_frequency_seconds=row["sign_in_frequency_seconds"],
            mfa_reauth_after=row["mfa_reauth_after"],
        )

    def _ensure_policy_row(self, user_oid: str) -> None:
        self.store.execute(
            "INSERT INTO entra_user_policies (user_oid) VALUES (?)"
            " ON CONFLICT(user_oid) DO NOTHING",
            (user_oid,),
        )

    def set_sign_in_frequency(self, user_oid: str, seconds: int | None) -> None:
        """Cap how old the last interactive sign-in behind a refresh may be (None: no cap)."""
        self._ensure_policy_row(user_oid)
        self.store.execute(
            "UPDATE entra_user_policies SET sign_in_frequency_seconds = ? WHERE user_oid = ?",
            (seconds, user_oid),
        )

    def require_mfa_reauth(self, user_oid: str) -> None:
        """Sessions signed in before now must sign in again with MFA."""
        self._ensure_policy_row(user_oid)
        self.store.execute(
            "UPDATE entra_user_policies SET mfa_reauth_after = ? WHERE user_oid = ?",
            (time.time(), user_oid),
        )

    def clear(self) -> None:
        """Forget every refresh token and policy (emulator reset)."""
        with self.store.transaction():
            self.store.execute("DELETE FROM entra_refresh_tokens")
            self.store.execute("DELETE FROM entra_user_policies")
        self.cae_events.clear()
