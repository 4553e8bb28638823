"""State stores: token state, the rotation journal and the audit log. Never a secret."""

from __future__ import annotations

from patwarden.state.sqlite import SqliteStateStore

__all__ = ["SqliteStateStore"]
