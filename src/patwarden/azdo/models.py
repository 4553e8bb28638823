"""Typed results of the PAT, Token Admin and Graph APIs, parsed tolerantly from their JSON.

Unknown fields are ignored and optional ones may be missing; a missing *identifying* field
(``authorizationId``, ``validTo``, ``descriptor``) is an :class:`AzdoUnexpectedResponse`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from patwarden.azdo.responses import unexpected
from patwarden.azdo.timestamps import parse_datetime
from patwarden.secret import Secret


class DisplayFilter(enum.StrEnum):
    """Which PATs the list API returns (``displayFilterOption``, contract §1.5)."""

    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"
    ALL = "all"


class SortBy(enum.StrEnum):
    """List order (``sortByOption``, contract §1.5)."""

    DISPLAY_NAME = "displayName"
    DISPLAY_DATE = "displayDate"
    STATUS = "status"


def as_object(data: object, *, what: str, action: str) -> Mapping[str, Any]:
    """Return *data* if it is a JSON object.

    Raises:
        AzdoUnexpectedResponse: it is not.
    """
    if not isinstance(data, Mapping):
        raise unexpected(f"{what} is not a JSON object", action=action)
    return data


def required_str(data: Mapping[str, Any], key: str, *, action: str) -> str:
    """Return ``data[key]`` as a non-empty string.

    Raises:
        AzdoUnexpectedResponse: the field is missing, empty or not a string.
    """
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise unexpected(f"field {key!r} is missing or not a string", action=action)
    return value


def optional_str(data: Mapping[str, Any], key: str) -> str | None:
    """Return ``data[key]`` if it is a string, else None."""
    value = data.get(key)
    return value if isinstance(value, str) else None


def optional_bool(data: Mapping[str, Any], key: str) -> bool | None:
    """Return ``data[key]`` if it is a boolean, else None."""
    value = data.get(key)
    return value if isinstance(value, bool) else None


def _datetime(data: Mapping[str, Any], key: str, *, action: str) -> datetime | None:
    value = data.get(key)
    if value is None:
        return None
    try:
        return parse_datetime(value)
    except ValueError:
        raise unexpected(f"field {key!r} is not a date-time", action=action) from None


def required_datetime(data: Mapping[str, Any], key: str, *, action: str) -> datetime:
    """Return ``data[key]`` parsed as a date-time.

    Raises:
        AzdoUnexpectedResponse: the field is missing or not a date-time.
    """
    value = _datetime(data, key, action=action)
    if value is None:
        raise unexpected(f"field {key!r} is missing", action=action)
    return value


def _scopes(value: object) -> tuple[str, ...]:
    return tuple(value.split()) if isinstance(value, str) else ()


def _targets(value: object) -> tuple[str, ...] | None:
    if not isinstance(value, list):
        return None
    return tuple(str(v).lower() for v in value)


@dataclass(frozen=True, kw_only=True)
class PatToken:
    """A PAT as the PAT Lifecycle API describes it (never its value). Contract §1.4."""

    authorization_id: str
    display_name: str
    scope: tuple[str, ...]
    valid_from: datetime | None
    valid_to: datetime
    # The organizations (host ids) the PAT is valid in; None means global (all organizations).
    target_accounts: tuple[str, ...] | None

    @property
    def is_global(self) -> bool:
        """True for a PAT valid in all organizations (those stop working on 2026-12-01)."""
        return self.target_accounts is None

    @classmethod
    def from_json(cls, data: object, *, action: str) -> PatToken:
        """Parse a ``PatToken`` object, ignoring its ``token`` field.

        Raises:
            AzdoUnexpectedResponse: ``authorizationId`` or ``validTo`` is missing or malformed.
        """
        obj = as_object(data, what="a PAT", action=action)
        return cls(
            authorization_id=required_str(obj, "authorizationId", action=action).lower(),
            display_name=optional_str(obj, "displayName") or "",
            scope=_scopes(obj.get("scope")),
            valid_from=_datetime(obj, "validFrom", action=action),
            valid_to=required_datetime(obj, "validTo", action=action),
            target_accounts=_targets(obj.get("targetAccounts")),
        )


@dataclass(frozen=True, kw_only=True)
class PatCreateResult:
    """A newly created PAT and its value, which Azure DevOps shows only this once."""

    token: PatToken
    value: Secret = field(repr=False)
    requested_valid_to: datetime
    # Set when policy shortened the expiry: the validTo that was asked for (token.valid_to is
    # what was granted). Contract §1.3, §1.7 "Conflict (lifespan policy)".
    clamped_from: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class PatUpdateResult:
    """A PAT after an update or extension; ``clamped_from`` as in :class:`PatCreateResult`."""

    token: PatToken
    clamped_from: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class SessionToken:
    """A user's PAT as the Token Admin API lists it (contract §3.1). Never carries a value."""

    authorization_id: str
    display_name: str
    scope: tuple[str, ...]
    valid_from: datetime | None
    valid_to: datetime | None
    target_accounts: tuple[str, ...] | None
    is_valid: bool | None
    is_public: bool | None
    user_id: str | None
    client_id: str | None

    @classmethod
    def from_json(cls, data: object, *, action: str) -> SessionToken:
        """Parse a ``SessionToken`` object.

        Raises:
            AzdoUnexpectedResponse: ``authorizationId`` is missing or a date is malformed.
        """
        obj = as_object(data, what="a session token", action=action)
        return cls(
            authorization_id=required_str(obj, "authorizationId", action=action).lower(),
            display_name=optional_str(obj, "displayName") or "",
            scope=_scopes(obj.get("scope")),
            valid_from=_datetime(obj, "validFrom", action=action),
            valid_to=_datetime(obj, "validTo", action=action),
            target_accounts=_targets(obj.get("targetAccounts")),
            is_valid=optional_bool(obj, "isValid"),
            is_public=optional_bool(obj, "isPublic"),
            user_id=optional_str(obj, "userId"),
            client_id=optional_str(obj, "clientId"),
        )


@dataclass(frozen=True, kw_only=True)
class GraphUser:
    """A user of the organization from the Graph API; only ``descriptor`` is guaranteed."""

    descriptor: str
    principal_name: str | None = None
    display_name: str | None = None
    origin_id: str | None = None
    origin: str | None = None
    mail_address: str | None = None
    subject_kind: str | None = None
    is_deleted_in_origin: bool | None = None

    @classmethod
    def from_json(cls, data: object, *, action: str) -> GraphUser:
        """Parse a ``GraphUser`` object.

        Raises:
            AzdoUnexpectedResponse: ``descriptor`` is missing.
        """
        obj = as_object(data, what="a Graph user", action=action)
        return cls(
            descriptor=required_str(obj, "descriptor", action=action),
            principal_name=optional_str(obj, "principalName"),
            display_name=optional_str(obj, "displayName"),
            origin_id=optional_str(obj, "originId"),
            origin=optional_str(obj, "origin"),
            mail_address=optional_str(obj, "mailAddress"),
            subject_kind=optional_str(obj, "subjectKind"),
            is_deleted_in_origin=optional_bool(obj, "isDeletedInOrigin"),
        )
