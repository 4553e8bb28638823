"""What a user login leaves behind: the MSAL cache plus a non-secret account record, kept together.

Both travel in one :class:`CacheEnvelope` so a store writes them atomically: the refresh token and
the "last renewed" timestamp can never disagree. The record alone is not secret (ids, username,
timestamps); the MSAL part holds the refresh token and is what the store encrypts.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from patwarden.errors import AuthError

FORMAT = "patwarden-token-cache"
VERSION = 1


class CacheFormatError(AuthError):
    """The persisted cache decrypted fine but is not a cache this version understands."""


@dataclass(frozen=True, kw_only=True)
class AccountRecord:
    """Which account the rotator signed in as, and when its sign-in was last renewed."""

    home_account_id: str
    username: str
    tenant_id: str
    client_id: str
    authority: str
    logged_in_at: (
        datetime  # last interactive login (device code): starts the sign-in-frequency clock
    )
    last_renewed_at: datetime  # last time Entra issued a refresh token: starts the 90-day clock
    # Where and how the interactive sign-in happened, and where it was handed over to (import);
    # empty in caches written before patwarden recorded them.
    signed_in_on: str = ""  # host name of the machine that ran `patwarden login`
    sign_in_method: str = ""  # "device_code" or "browser"
    handed_over_to: str = ""  # host name of the machine that imported it (`login --import`)
    handed_over_at: datetime | None = None

    def to_json(self) -> dict[str, str | None]:
        """A JSON-ready dict (datetimes as ISO 8601)."""
        data = asdict(self)
        return {
            key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in data.items()
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AccountRecord:
        """Rebuild a record written by :meth:`to_json`.

        Raises:
            KeyError, ValueError, TypeError: the data is not a record.
        """
        return cls(
            home_account_id=str(data["home_account_id"]),
            username=str(data["username"]),
            tenant_id=str(data["tenant_id"]),
            client_id=str(data["client_id"]),
            authority=str(data["authority"]),
            logged_in_at=datetime.fromisoformat(data["logged_in_at"]),
            last_renewed_at=datetime.fromisoformat(data["last_renewed_at"]),
            signed_in_on=str(data.get("signed_in_on") or ""),
            sign_in_method=str(data.get("sign_in_method") or ""),
            handed_over_to=str(data.get("handed_over_to") or ""),
            handed_over_at=(
                datetime.fromisoformat(data["handed_over_at"])
                if data.get("handed_over_at")
                else None
            ),
        )


@dataclass(frozen=True, kw_only=True)
class CacheEnvelope:
    """The unit a :class:`~patwarden.identity.cache_store.CacheStore` persists."""

    account: AccountRecord | None
    msal_cache: str = field(repr=False)  # MSAL's serialized cache: holds the refresh token
    # Raised by one on every save (patwarden.identity.cache_generation): sealed with the cache, so
    # an older copy put back is told apart. 0 in caches written before it was recorded.
    generation: int = 0

    def to_bytes(self) -> bytes:
        """Serialize (plaintext: the store encrypts it)."""
        body = {
            "format": FORMAT,
            "version": VERSION,
            "account": self.account.to_json() if self.account else None,
            "msal": self.msal_cache,
            "generation": self.generation,
        }
        return json.dumps(body, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes, *, where: str) -> CacheEnvelope:
        """Parse bytes written by :meth:`to_bytes`.

        Raises:
            CacheFormatError: not an envelope, or from a newer patwarden.
        """
        try:
            body = json.loads(data.decode("utf-8"))
            if body.get("format") != FORMAT:
                raise ValueError("not a patwarden token cache")
            if body.get("version") != VERSION:
                raise CacheFormatError(
                    f"the token cache {where} has format version {body.get('version')!r}; "
                    f"this patwarden reads version {VERSION}",
                    hint="upgrade patwarden, or log out and log in again with this version",
                )
            account = AccountRecord.from_json(body["account"]) if body.get("account") else None
            generation = int(body.get("generation") or 0)
            return cls(account=account, msal_cache=str(body["msal"]), generation=generation)
        except CacheFormatError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
            raise CacheFormatError(
                f"the token cache {where} is damaged or not a patwarden cache",
                hint="run `patwarden logout` and `patwarden login` to recreate it",
            ) from None
