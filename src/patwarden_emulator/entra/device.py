"""Device codes (contract §4.2): issue, approve or deny, expire, redeem once.

A code is approved through the admin API, at once with ``--auto-approve-device-codes``, or by a
person at ``{base}/devicelogin`` (user code + username + password; signing in there is where the
human "satisfies MFA"). Device codes are stored as SHA-256 hashes; user codes are not secrets.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from dataclasses import dataclass

from patwarden_emulator.entra.errors import AadError
from patwarden_emulator.store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS entra_device_codes (
    device_code_sha256 TEXT PRIMARY KEY,
    user_code TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    user_oid TEXT,
    decided_at REAL
);
"""

DEVICE_CODE_LIFETIME = 900
POLL_INTERVAL = 5
_USER_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


@dataclass(frozen=True)
class DeviceCode:
    """A device-code request as the admin API lists it (never the device code itself)."""

    user_code: str
    client_id: str
    scope: str
    created_at: float
    expires_at: float
    status: str  # pending | approved | denied | redeemed | expired
    user_oid: str | None
    decided_at: float | None


@dataclass(frozen=True)
class Redemption:
    """An approved device code, redeemed: who signed in, when, for which scopes."""

    user_oid: str
    scope: str
    auth_time: float


def _error(code: int, error: str, message: str) -> AadError:
    return AadError(code, error, message)


class DeviceCodes:
    """The device-code table."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.ensure_schema(SCHEMA)

    def create(self, *, client_id: str, scope: str) -> tuple[str, DeviceCode]:
        """Start a device flow; return (device code, its record)."""
        device_code = "DAQABIQEAAAD" + secrets.token_urlsafe(96)
        now = time.time()
        while True:
            user_code = "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(9))
            if self.by_user_code(user_code) is None:
                break
        self.store.execute(
            "INSERT INTO entra_device_codes (device_code_sha256, user_code, client_id, scope,"
            " created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            (_digest(device_code), user_code, client_id, scope, now, now + DEVICE_CODE_LIFETIME),
        )
        record = self.by_user_code(user_code)
        assert record is not None
        return device_code, record

    @staticmethod
    def _record(row: sqlite3.Row) -> DeviceCode:
        get = row.__getitem__
        status = str(get("status"))
        if status == "pending" and time.time() > float(get("expires_at")):
            status = "expired"
        return DeviceCode(
            user_code=get("user_code"),
            client_id=get("client_id"),
            scope=get("scope"),
            created_at=get("created_at"),
            expires_at=get("expires_at"),
            status=status,
            user_oid=get("user_oid"),
            decided_at=get("decided_at"),
        )

    def by_user_code(self, user_code: str) -> DeviceCode | None:
        """Look a request up by the code the user types (case-insensitive)."""
        row = self.store.one(
            "SELECT * FROM entra_device_codes WHERE user_code = ?", (user_code.strip().upper(),)
        )
        return None if row is None else self._record(row)

    def pending(self) -> list[DeviceCode]:
        """Requests still waiting for a user, oldest first."""
        rows = self.store.query(
            "SELECT * FROM entra_device_codes WHERE status = 'pending' AND expires_at >= ?"
            " ORDER BY created_at",
            (time.time(),),
        )
        return [self._record(row) for row in rows]

    def decide(self, *, user_code: str, approve: bool, user_oid: str | None) -> DeviceCode | None:
        """Approve (as *user_oid*) or deny a pending request; None if it is not pending."""
        changed = self.store.execute(
            "UPDATE entra_device_codes SET status = ?, user_oid = ?, decided_at = ?"
            " WHERE user_code = ? AND status = 'pending' AND expires_at >= ?",
            (
                "approved" if approve else "denied",
                user_oid,
                time.time(),
                user_code.strip().upper(),
                time.time(),
            ),
        )
        return self.by_user_code(user_code) if changed else None

    def expire(self, user_code: str) -> bool:
        """Make a request expire now (admin API, for tests of ``expired_token``)."""
        return bool(
            self.store.execute(
                "UPDATE entra_device_codes SET expires_at = ? WHERE user_code = ?",
                (time.time() - 1, user_code.strip().upper()),
            )
        )

    def redeem(self, *, device_code: str, client_id: str) -> Redemption:
        """Exchange an approved device code, once.

        Raises:
            AadError: ``bad_verification_code``, ``expired_token``, ``authorization_declined``,
                ``authorization_pending`` or ``invalid_grant`` (already redeemed).
        """
        digest = _digest(device_code)
        with self.store.transaction():
            row = self.store.one(
                "SELECT * FROM entra_device_codes WHERE device_code_sha256 = ?", (digest,)
            )
            if row is None or row["client_id"] != client_id:
                raise _error(
                    70000,
                    "bad_verification_code",
                    "The provided value for the input parameter 'device_code' is not valid.",
                )
            if row["status"] == "redeemed":
                raise _error(
                    70000, "invalid_grant", "The provided device code was already redeemed."
                )
            if time.time() > row["expires_at"]:
                raise _error(70019, "expired_token", "Verification code expired.")
            if row["status"] == "denied":
                raise _error(
                    70000, "authorization_declined", "The user declined the authorization request."
                )
            if row["status"] == "pending":
                raise _error(
                    70016,
                    "authorization_pending",
                    "The provided request has not yet been authorized by the user. The user must "
                    "input their code.",
                )
            self.store.execute(
                "UPDATE entra_device_codes SET status = 'redeemed' WHERE device_code_sha256 = ?",
                (digest,),
            )
            return Redemption(
                user_oid=str(row["user_oid"]), scope=row["scope"], auth_time=row["decided_at"]
            )

    def clear(self) -> None:
        """Forget every device code (emulator reset)."""
        self.store.execute("DELETE FROM entra_device_codes")
