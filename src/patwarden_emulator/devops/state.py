"""Persistent state of the emulated Azure DevOps: organizations, projects, policies and PATs.

PAT values are never stored: only their SHA-256 (the emulator hands the value out once, in the
create response, exactly like the real service). Times are stored as integer microseconds (UTC).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import string
import uuid
from dataclasses import dataclass, field
from typing import Any

from patwarden_emulator.auth import Principal
from patwarden_emulator.context import Emulator
from patwarden_emulator.devops.policies import Policies, policies_from_json
from patwarden_emulator.devops.wire import from_timestamp, not_found, utcnow

SCHEMA = """
CREATE TABLE IF NOT EXISTS devops_orgs (
    name TEXT PRIMARY KEY COLLATE NOCASE,
    id TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS devops_projects (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    name TEXT NOT NULL COLLATE NOCASE,
    UNIQUE (org_id, name)
);
CREATE TABLE IF NOT EXISTS devops_pats (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    authorization_id TEXT NOT NULL UNIQUE,
    user_oid TEXT NOT NULL,
    display_name TEXT NOT NULL,
    scope TEXT NOT NULL,
    valid_from_us INTEGER NOT NULL,
    valid_to_us INTEGER NOT NULL,
    target_org TEXT,
    revoked INTEGER NOT NULL DEFAULT 0,
    token_sha256 TEXT NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS devops_pats_user ON devops_pats (user_oid, display_name);
"""

DEFAULT_PROJECT = "infra"
_POLICY_KEY = "devops_policies"
_ALNUM = string.ascii_letters + string.digits
_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"


@dataclass(frozen=True)
class Organization:
    """An emulated Azure DevOps organization."""

    name: str
    id: str


@dataclass(frozen=True)
class PatRecord:
    """One stored PAT (its value is not kept)."""

    authorization_id: str
    user_oid: str
    display_name: str
    scope: str
    valid_from: dt.datetime
    valid_to: dt.datetime
    target_org: str | None
    revoked: bool
    seq: int = field(default=0, compare=False)

    @property
    def is_global(self) -> bool:
        return self.target_org is None

    def is_expired(self, now: dt.datetime) -> bool:
        """True once ``validTo`` has passed."""
        return self.valid_to <= now


def to_us(value: dt.datetime) -> int:
    """Integer microseconds since the epoch."""
    delta = value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> dt.datetime:
    """Inverse of :func:`to_us`."""
    return from_timestamp(value // 1_000_000).replace(microsecond=value % 1_000_000)


# Every emulator PAT starts with this, so no secret scanner (GitHub's, trufflehog, gitleaks) takes a
# test fixture or a log of a demo for a real Azure DevOps PAT: real ones are bare alphanumerics,
# and the underscore joins the prefix to the value as one word, so a word-bounded pattern misses it.
EMULATOR_PAT_PREFIX = "pwemu_"


def new_pat_value(fmt: str) -> str:
    """A fresh random PAT value: ``pwemu_`` then 84 characters with the ``AZDO`` signature, or
    ``pwemu_`` then 52 lowercase base32 (legacy)."""
    return EMULATOR_PAT_PREFIX + _random_pat_body(fmt)


def _random_pat_body(fmt: str) -> str:
    if fmt == "legacy52":
        return "".join(_BASE32[byte % 32] for byte in secrets.token_bytes(52))
    # 248 = 4 * 62: dropping bytes >= 248 keeps every character equally likely.
    chars = [_ALNUM[byte % 62] for byte in secrets.token_bytes(120) if byte < 248]
    while len(chars) < 80:
        chars += [_ALNUM[byte % 62] for byte in secrets.token_bytes(16) if byte < 248]
    return "".join(chars[:52]) + "AZDO" + "".join(chars[52:80])


def token_hash(value: str) -> str:
    """The SHA-256 under which a PAT value is stored."""
    return hashlib.sha256(value.encode()).hexdigest()


def _record(row: Any) -> PatRecord:
    return PatRecord(
        authorization_id=row["authorization_id"],
        user_oid=row["user_oid"],
        display_name=row["display_name"],
        scope=row["scope"],
        valid_from=from_us(row["valid_from_us"]),
        valid_to=from_us(row["valid_to_us"]),
        target_org=row["target_org"],
        revoked=bool(row["revoked"]),
        seq=row["seq"],
    )


class DevopsState:
    """Typed access to the ``devops_*`` tables, plus the cached policies."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.store = emu.store
        self.store.ensure_schema(SCHEMA)
        self._policies: Policies | None = None
        self._orgs: dict[str, Organization] = {}
        # Verified bearer tokens → (principal, expiry); see devops_auth._verified_bearer.
        self.verified_tokens: dict[str, tuple[Principal, float]] = {}
        self.ensure_seeded()

    # organizations and projects ----------------------------------------------------------
    def ensure_seeded(self) -> None:
        """Create the default organization and its default project (idempotent)."""
        self.add_organization(self.emu.organization, org_id=self.emu.organization_id)
        self.add_project(self.emu.organization_id, DEFAULT_PROJECT)

    def add_organization(self, name: str, *, org_id: str | None = None) -> Organization:
        """Create an organization (or return the existing one with that name)."""
        existing = self.organization(name)
        if existing is not None:
            return existing
        self.store.execute(
            "INSERT INTO devops_orgs (name, id) VALUES (?, ?)", (name, org_id or str(uuid.uuid4()))
        )
        found = self.organization(name)
        assert found is not None
        return found

    def organization(self, name: str) -> Organization | None:
        """Look an organization up by name (case-insensitive)."""
        cached = self._orgs.get(name.lower())
        if cached is not None:
            return cached
        row = self.store.one("SELECT name, id FROM devops_orgs WHERE name = ?", (name,))
        if row is None:
            return None
        org = Organization(name=row["name"], id=row["id"])
        self._orgs[name.lower()] = org
        return org

    def organizations(self) -> list[Organization]:
        """All organizations."""
        rows = self.store.query("SELECT name, id FROM devops_orgs ORDER BY name")
        return [Organization(name=row["name"], id=row["id"]) for row in rows]

    def add_project(self, org_id: str, name: str) -> dict[str, str]:
        """Create a project in an organization (or return the existing one)."""
        existing = self.project(org_id, name)
        if existing is not None:
            return existing
        self.store.execute(
            "INSERT INTO devops_projects (id, org_id, name) VALUES (?, ?, ?)",
            (str(uuid.uuid4()), org_id, name),
        )
        found = self.project(org_id, name)
        assert found is not None
        return found

    def project(self, org_id: str, name_or_id: str) -> dict[str, str] | None:
        """A project by name (case-insensitive) or id."""
        row = self.store.one(
            "SELECT id, name FROM devops_projects WHERE org_id = ? AND (name = ? OR id = ?)",
            (org_id, name_or_id, name_or_id.lower()),
        )
        return None if row is None else {"id": row["id"], "name": row["name"]}

    def require_project(self, org: Organization, name_or_id: str) -> dict[str, str]:
        """A project of *org* by name or id.

        Raises:
            VssError: 404 TF200016 when the project does not exist.
        """
        project = self.project(org.id, name_or_id)
        if project is None:
            raise not_found(
                f"TF200016: The following project does not exist: {name_or_id}. Verify that the"
                " name of the project is correct and that the project exists on the specified"
                " Azure DevOps Server.",
                "ProjectDoesNotExistWithNameException",
            )
        return project

    def projects(self, org_id: str) -> list[dict[str, str]]:
        """All projects of an organization, by name."""
        rows = self.store.query(
            "SELECT id, name FROM devops_projects WHERE org_id = ? ORDER BY name", (org_id,)
        )
        return [{"id": row["id"], "name": row["name"]} for row in rows]

    # policies ----------------------------------------------------------------------------
    @property
    def policies(self) -> Policies:
        """The current policies (cached; written through :meth:`set_policies`)."""
        if self._policies is None:
            raw = self.store.get_meta(_POLICY_KEY)
            self._policies = policies_from_json(Policies(), json.loads(raw)) if raw else Policies()
        return self._policies

    def set_policies(self, policies: Policies) -> None:
        """Persist new policies."""
        self.store.set_meta(_POLICY_KEY, json.dumps(policies.to_json()))
        self._policies = policies

    # PATs --------------------------------------------------------------------------------
    def insert_pat(self, record: PatRecord, *, token_sha256: str) -> PatRecord:
        """Store a new PAT."""
        self.store.execute(
            "INSERT INTO devops_pats (authorization_id, user_oid, display_name, scope,"
            " valid_from_us, valid_to_us, target_org, revoked, token_sha256)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            pat_row(record, token_sha256=token_sha256),
        )
        return record

    def pat(self, authorization_id: str) -> PatRecord | None:
        """A PAT by authorization id."""
        row = self.store.one(
            "SELECT * FROM devops_pats WHERE authorization_id = ?", (authorization_id.lower(),)
        )
        return None if row is None else _record(row)

    def pat_by_value(self, value: str) -> PatRecord | None:
        """The PAT whose value is *value*, or None."""
        row = self.store.one(
            "SELECT * FROM devops_pats WHERE token_sha256 = ?", (token_hash(value),)
        )
        return None if row is None else _record(row)

    def update_pat(self, record: PatRecord) -> None:
        """Write back a PAT's mutable fields."""
        self.store.execute(
            "UPDATE devops_pats SET display_name = ?, scope = ?, valid_to_us = ?, target_org = ?,"
            " revoked = ? WHERE authorization_id = ?",
            (
                record.display_name,
                record.scope,
                to_us(record.valid_to),
                record.target_org,
                int(record.revoked),
                record.authorization_id,
            ),
        )

    def revoke_pats(self, authorization_ids: list[str]) -> int:
        """Revoke PATs by id; return how many changed."""
        changed = 0
        with self.store.transaction():
            for auth_id in authorization_ids:
                changed += self.store.execute(
                    "UPDATE devops_pats SET revoked = 1 WHERE authorization_id = ? AND revoked = 0",
                    (auth_id.lower(),),
                )
        return changed

    def list_pats(
        self,
        *,
        user_oid: str,
        org_id: str | None,
        where: str = "",
        order: str = "display_name COLLATE NOCASE, seq",
        params: tuple[Any, ...] = (),
        offset: int = 0,
        limit: int = 100,
    ) -> list[PatRecord]:
        """A user's PATs visible in *org_id* (bound to it or global; all orgs when None)."""
        clauses = ["user_oid = ?"]
        args: list[Any] = [user_oid]
        if org_id is not None:
            clauses.append("(target_org = ? OR target_org IS NULL)")
            args.append(org_id)
        if where:
            clauses.append(where)
        sql = (
            f"SELECT * FROM devops_pats WHERE {' AND '.join(clauses)}"  # noqa: S608 - fixed fragments
            f" ORDER BY {order} LIMIT ? OFFSET ?"
        )
        rows = self.store.query(sql, (*args, *params, limit, offset))
        return [_record(row) for row in rows]

    def reset(self) -> None:
        """Back to freshly seeded: no PATs, only the default organization and project."""
        with self.store.transaction():
            self.store.execute("DELETE FROM devops_pats")
            self.store.execute("DELETE FROM devops_projects")
            self.store.execute("DELETE FROM devops_orgs")
            self.store.execute("DELETE FROM meta WHERE key = ?", (_POLICY_KEY,))
        self._policies = None
        self._orgs.clear()
        self.ensure_seeded()


def pat_row(record: PatRecord, *, token_sha256: str) -> tuple[Any, ...]:
    """The INSERT parameters of a PAT row (shared with bulk seeding)."""
    return (
        record.authorization_id,
        record.user_oid,
        record.display_name,
        record.scope,
        to_us(record.valid_from),
        to_us(record.valid_to),
        record.target_org,
        int(record.revoked),
        token_sha256,
    )


def now() -> dt.datetime:
    """The current UTC time (one place, so the module reads well)."""
    return utcnow()


def devops_state(emu: Emulator) -> DevopsState:
    """The one :class:`DevopsState` of *emu* (created on first use, kept in ``emu.runtime``)."""
    state = emu.runtime.get("devops")
    if not isinstance(state, DevopsState):
        state = DevopsState(emu)
        emu.runtime["devops"] = state
    return state
