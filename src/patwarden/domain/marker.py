"""The display-name marker that ties a PAT to a managed token and one rotation operation.

Every PAT patwarden creates is named ``patwarden:<token-name>:<operation-id>``. The marker makes a
create recoverable (a lost response is found again by name) and lets ``adopt`` and reconcile tell
patwarden's PATs from everyone else's. :func:`parse_marker` returns ``None`` for anything that is
not exactly ours, so PATs people created by hand are never touched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MARKER_PREFIX", "Marker", "format_marker", "is_valid_token_name", "parse_marker"]

MARKER_PREFIX = "patwarden"
_TOKEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_OPERATION_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True, kw_only=True)
class Marker:
    """A parsed marker: the managed token's name and the operation that created the PAT."""

    token_name: str
    operation_id: str

    def __str__(self) -> str:
        return f"{MARKER_PREFIX}:{self.token_name}:{self.operation_id}"


def is_valid_token_name(name: str) -> bool:
    """Return whether ``name`` can be carried in a marker (letters, digits, ``.``, ``_``, ``-``)."""
    return _TOKEN_NAME.fullmatch(name) is not None


def format_marker(*, token_name: str, operation_id: str) -> str:
    """Return the display name for a PAT created by operation ``operation_id`` of ``token_name``.

    Raises:
        ValueError: the name or id cannot be represented; callers validate names at config load,
            so this is a programming error, not a user error.
    """
    if not is_valid_token_name(token_name):
        raise ValueError(f"token name {token_name!r} cannot be used in a PAT display name")
    if _OPERATION_ID.fullmatch(operation_id) is None:
        raise ValueError(f"operation id {operation_id!r} is not 32 lowercase hex digits")
    return str(Marker(token_name=token_name, operation_id=operation_id))


def parse_marker(display_name: str | None) -> Marker | None:
    """Return the marker in ``display_name``, or ``None`` if the PAT is not one of ours."""
    if not display_name:
        return None
    parts = display_name.split(":")
    if len(parts) != 3 or parts[0] != MARKER_PREFIX:
        return None
    _, token_name, operation_id = parts
    if not is_valid_token_name(token_name) or _OPERATION_ID.fullmatch(operation_id) is None:
        return None
    return Marker(token_name=token_name, operation_id=operation_id)
