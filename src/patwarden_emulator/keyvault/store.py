"""The emulated vault's persistent state: secret versions, soft-deleted secrets and RBAC grants.

Secret names are case-insensitive (as in Azure Key Vault) and keep the spelling of their first
``set``. Every ``set`` adds a version with a 32-hex id; "latest" is the most recently created
version. A deleted secret keeps its versions until it is purged or recovered (soft delete).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from patwarden_emulator.store import Store

SECRETS_OFFICER = "Key Vault Secrets Officer"
SECRETS_USER = "Key Vault Secrets User"
ADMINISTRATOR = "Key Vault Administrator"
ROLES = (SECRETS_OFFICER, SECRETS_USER, ADMINISTRATOR)

SCHEMA = """
CREATE TABLE IF NOT EXISTS keyvault_secrets (
    name TEXT PRIMARY KEY COLLATE NOCASE,
    deleted_at INTEGER
);
CREATE TABLE IF NOT EXISTS keyvault_versions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL COLLATE NOCASE REFERENCES keyvault_secrets (name) ON DELETE CASCADE,
    version TEXT NOT NULL UNIQUE,
    value TEXT NOT NULL,
    content_type TEXT,
    tags TEXT,
    enabled INTEGER NOT NULL,
    nbf INTEGER,
    exp INTEGER,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS keyvault_versions_name ON keyvault_versions (name, seq);
CREATE TABLE IF NOT EXISTS keyvault_grants (
    principal TEXT NOT NULL COLLATE NOCASE,
    role TEXT NOT NULL,
    PRIMARY KEY (principal, role)
);
"""


class SecretDeletedError(Exception):
    """The name belongs to a soft-deleted secret: it can only be recovered or purged."""


@dataclass(frozen=True)
class SecretVersion:
    """One version of a secret, with its properties."""

    name: str
    version: str
    content_type: str | None
    tags: Mapping[str, str] | None
    enabled: bool
    not_before: int | None
    expires: int | None
    created: int
    updated: int
    value: str = field(repr=False)


@dataclass(frozen=True)
class PropertyChanges:
    """What an update-properties call changes (``None`` = leave as it is)."""

    content_type: str | None = None
    tags: Mapping[str, str] | None = None
    enabled: bool | None = None
    not_before: int | None = None
    expires: int | None = None


@dataclass(frozen=True)
class Grant:
    """A role assignment on the vault: *principal* is a UPN, client id or object id."""

    principal: str
    role: str


def _version(row: sqlite3.Row) -> SecretVersion:
    tags = row["tags"]
    return SecretVersion(
        name=str(row["display_name"]),
        version=str(row["version"]),
        content_type=None if row["content_type"] is None else str(row["content_type"]),
        tags=None if tags is None else dict(json.loads(str(tags))),
        enabled=bool(row["enabled"]),
        not_before=None if row["nbf"] is None else int(row["nbf"]),
        expires=None if row["exp"] is None else int(row["exp"]),
        created=int(row["created"]),
        updated=int(row["updated"]),
        value=str(row["value"]),
    )


_SELECT = (
    "SELECT v.*, s.name AS display_name FROM keyvault_versions v"
    " JOIN keyvault_secrets s ON s.name = v.name"
)


class SecretStore:
    """Secrets, their versions and the vault's role assignments, in the emulator's database."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.ensure_schema(SCHEMA)

    # secrets -------------------------------------------------------------------------------
    def set_secret(
        self,
        *,
        name: str,
        value: str,
        content_type: str | None,
        tags: Mapping[str, str] | None,
        enabled: bool,
        not_before: int | None,
        expires: int | None,
        now: int,
    ) -> SecretVersion:
        """Add a new version (creating the secret on first use) and return it.

        Raises:
            SecretDeletedError: the name belongs to a soft-deleted secret.
        """
        version = uuid.uuid4().hex
        with self.store.transaction() as tx:
            row = tx.one("SELECT deleted_at FROM keyvault_secrets WHERE name = ?", (name,))
            if row is not None and row["deleted_at"] is not None:
                raise SecretDeletedError(name)
            if row is None:
                tx.execute("INSERT INTO keyvault_secrets (name) VALUES (?)", (name,))
            tx.execute(
                "INSERT INTO keyvault_versions (name, version, value, content_type, tags, enabled,"
                " nbf, exp, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    version,
                    value,
                    content_type,
                    None if tags is None else json.dumps(dict(tags)),
                    int(enabled),
                    not_before,
                    expires,
                    now,
                    now,
                ),
            )
        found = self.version(name=name, version=version)
        assert found is not None
        return found

    def latest(self, *, name: str, include_deleted: bool = False) -> SecretVersion | None:
        """The most recent version of a secret (None if absent, or deleted unless asked)."""
        deleted = "" if include_deleted else " AND s.deleted_at IS NULL"
        row = self.store.one(
            f"{_SELECT} WHERE v.name = ?{deleted} ORDER BY v.seq DESC LIMIT 1",
            (name,),
        )
        return None if row is None else _version(row)

    def version(self, *, name: str, version: str) -> SecretVersion | None:
        """One version of a live (not deleted) secret."""
        row = self.store.one(
            f"{_SELECT} WHERE v.name = ? AND v.version = ? AND s.deleted_at IS NULL",
            (name, version.lower()),
        )
        return None if row is None else _version(row)

    def versions(self, *, name: str, offset: int, limit: int) -> list[SecretVersion]:
        """Versions of a live secret, oldest first, one page at a time."""
        rows = self.store.query(
            f"{_SELECT} WHERE v.name = ? AND s.deleted_at IS NULL ORDER BY v.seq LIMIT ? OFFSET ?",
            (name, limit, offset),
        )
        return [_version(row) for row in rows]

    def exists(self, *, name: str) -> bool:
        """Whether a live secret of that name exists."""
        row = self.store.one(
            "SELECT 1 FROM keyvault_secrets WHERE name = ? AND deleted_at IS NULL", (name,)
        )
        return row is not None

    def secrets(self, *, offset: int, limit: int, deleted: bool = False) -> list[SecretVersion]:
        """The latest version of each live (or each deleted) secret, by name, one page at a time."""
        condition = "IS NOT NULL" if deleted else "IS NULL"
        rows = self.store.query(
            f"SELECT name FROM keyvault_secrets WHERE deleted_at {condition}"  # noqa: S608 - fixed SQL fragments
            " ORDER BY name LIMIT ? OFFSET ?",
            (limit, offset),
        )
        found = [self.latest(name=row["name"], include_deleted=deleted) for row in rows]
        return [item for item in found if item is not None]

    def update(
        self, *, name: str, version: str | None, changes: PropertyChanges, now: int
    ) -> SecretVersion | None:
        """Change the properties of one version (the latest when *version* is None)."""
        target = (
            self.latest(name=name) if version is None else self.version(name=name, version=version)
        )
        if target is None:
            return None
        assignments: list[str] = ["updated = ?"]
        params: list[object] = [now]
        for column, value in (
            ("content_type", changes.content_type),
            ("tags", None if changes.tags is None else json.dumps(dict(changes.tags))),
            ("enabled", None if changes.enabled is None else int(changes.enabled)),
            ("nbf", changes.not_before),
            ("exp", changes.expires),
        ):
            if value is not None:
                assignments.append(f"{column} = ?")
                params.append(value)
        self.store.execute(
            f"UPDATE keyvault_versions SET {', '.join(assignments)} WHERE version = ?",  # noqa: S608 - fixed column names
            (*params, target.version),
        )
        return self.version(name=name, version=target.version)

    # soft delete ---------------------------------------------------------------------------
    def delete(self, *, name: str, now: int) -> SecretVersion | None:
        """Soft-delete a live secret and return its latest version (None if there is none)."""
        latest = self.latest(name=name)
        if latest is None:
            return None
        self.store.execute("UPDATE keyvault_secrets SET deleted_at = ? WHERE name = ?", (now, name))
        return latest

    def deleted_at(self, *, name: str) -> int | None:
        """When a soft-deleted secret was deleted (None if it is not deleted)."""
        row = self.store.one("SELECT deleted_at FROM keyvault_secrets WHERE name = ?", (name,))
        return None if row is None or row["deleted_at"] is None else int(row["deleted_at"])

    def recover(self, *, name: str) -> SecretVersion | None:
        """Undo a soft delete; return the latest version (None if the name is not deleted)."""
        changed = self.store.execute(
            "UPDATE keyvault_secrets SET deleted_at = NULL"
            " WHERE name = ? AND deleted_at IS NOT NULL",
            (name,),
        )
        return self.latest(name=name) if changed else None

    def purge(self, *, name: str) -> bool:
        """Remove a soft-deleted secret for good; False if the name is not deleted."""
        with self.store.transaction() as tx:
            if (
                tx.one(
                    "SELECT 1 FROM keyvault_secrets WHERE name = ? AND deleted_at IS NOT NULL",
                    (name,),
                )
                is None
            ):
                return False
            tx.execute("DELETE FROM keyvault_versions WHERE name = ?", (name,))
            tx.execute("DELETE FROM keyvault_secrets WHERE name = ?", (name,))
        return True

    # role assignments ----------------------------------------------------------------------
    def grant(self, *, principal: str, role: str) -> None:
        """Assign *role* to *principal* (idempotent)."""
        self.store.execute(
            "INSERT OR IGNORE INTO keyvault_grants (principal, role) VALUES (?, ?)",
            (principal, role),
        )

    def revoke(self, *, principal: str, role: str | None = None) -> int:
        """Remove one role (or every role) of *principal*; return how many were removed."""
        if role is None:
            return self.store.execute(
                "DELETE FROM keyvault_grants WHERE principal = ?", (principal,)
            )
        return self.store.execute(
            "DELETE FROM keyvault_grants WHERE principal = ? AND role = ?", (principal, role)
        )

    def grants(self) -> list[Grant]:
        """Every role assignment, by principal."""
        rows = self.store.query(
            "SELECT principal, role FROM keyvault_grants ORDER BY principal, role"
        )
        return [Grant(principal=row["principal"], role=row["role"]) for row in rows]

    def roles_of(self, identifiers: Iterable[str]) -> set[str]:
        """The roles assigned to any of *identifiers* (the names one principal is known by)."""
        wanted = [item for item in identifiers if item]
        if not wanted:
            return set()
        marks = ", ".join("?" for _ in wanted)
        rows = self.store.query(
            f"SELECT role FROM keyvault_grants WHERE principal IN ({marks})",  # noqa: S608 - placeholders only
            wanted,
        )
        return {str(row["role"]) for row in rows}

    def clear(self, *, default_grants: Iterable[Grant]) -> None:
        """Forget every secret and assignment, then restore the default assignments."""
        with self.store.transaction() as tx:
            tx.execute("DELETE FROM keyvault_versions")
            tx.execute("DELETE FROM keyvault_secrets")
            tx.execute("DELETE FROM keyvault_grants")
            for item in default_grants:
                tx.execute(
                    "INSERT OR IGNORE INTO keyvault_grants (principal, role) VALUES (?, ?)",
                    (item.principal, item.role),
                )
