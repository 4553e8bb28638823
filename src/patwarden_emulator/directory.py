"""The emulated tenant's directory: users, app registrations and service principals.

The first start seeds the identities every test and the demo rely on (see :data:`DEFAULT_USERS` and
:func:`seed_defaults`); the admin API can add more.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from patwarden_emulator.store import Store

KEY_VAULT_RESOURCE = "https://vault.azure.net"

# Delegated Azure DevOps permissions consented for the public client (`/.default` yields them all).
PUBLIC_CLIENT_SCOPES = (
    "vso.pats",
    "vso.pats_manage",
    "vso.tokenadministration",
    "vso.graph",
    "vso.profile",
    "vso.project",
    "vso.variablegroups_manage",
    "vso.serviceendpoint_manage",
)

# The (mfa_required, org_admin) flags `seed_defaults` gives its users, by UPN; `Directory.reset`
# restores them. Keep the two in step.
SEEDED_USER_FLAGS: dict[str, tuple[bool, bool]] = {
    "svc-patwarden@contoso.example": (True, False),
    "admin@contoso.example": (True, True),
    "legacy-svc@contoso.example": (False, False),
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    oid TEXT PRIMARY KEY,
    upn TEXT NOT NULL UNIQUE COLLATE NOCASE,
    display_name TEXT NOT NULL,
    password_sha256 TEXT NOT NULL,
    mfa_required INTEGER NOT NULL DEFAULT 1,
    enabled INTEGER NOT NULL DEFAULT 1,
    org_admin INTEGER NOT NULL DEFAULT 0,
    removed INTEGER NOT NULL DEFAULT 0,
    descriptor TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS apps (
    client_id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    sp_oid TEXT NOT NULL UNIQUE,
    public_client INTEGER NOT NULL,
    secret TEXT,
    certificate_pem TEXT,
    delegated_scopes TEXT NOT NULL DEFAULT ''
);
"""


@dataclass(frozen=True)
class User:
    """A directory user."""

    oid: str
    upn: str
    display_name: str
    mfa_required: bool
    enabled: bool
    org_admin: bool
    removed: bool
    descriptor: str
    password_sha256: str = field(repr=False)

    def check_password(self, password: str) -> bool:
        """Constant-time password check."""
        digest = hashlib.sha256(password.encode()).hexdigest()
        return secrets.compare_digest(digest, self.password_sha256)


@dataclass(frozen=True)
class App:
    """An app registration with its service principal."""

    client_id: str
    display_name: str
    sp_oid: str
    public_client: bool
    delegated_scopes: tuple[str, ...]
    secret: str | None = field(default=None, repr=False)
    certificate_pem: str | None = field(default=None, repr=False)


def _descriptor(oid: str) -> str:
    # Graph subject descriptors look like "aad.<base64 of something>"; any stable opaque value does.
    import base64

    return "aad." + base64.urlsafe_b64encode(oid.encode()).rstrip(b"=").decode()


class Directory:
    """Users and apps of the one emulated tenant."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.ensure_schema(SCHEMA)

    # users ---------------------------------------------------------------------------------
    def add_user(
        self,
        *,
        upn: str,
        display_name: str,
        password: str,
        mfa_required: bool = True,
        org_admin: bool = False,
        oid: str | None = None,
    ) -> User:
        """Create a user (or return the existing one with that UPN)."""
        existing = self.user_by_upn(upn)
        if existing is not None:
            return existing
        oid = oid or str(uuid.uuid4())
        self.store.execute(
            "INSERT INTO users (oid, upn, display_name, password_sha256, mfa_required, org_admin,"
            " descriptor) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                oid,
                upn,
                display_name,
                hashlib.sha256(password.encode()).hexdigest(),
                int(mfa_required),
                int(org_admin),
                _descriptor(oid),
            ),
        )
        user = self.user_by_oid(oid)
        assert user is not None
        return user

    def _user(self, where: str, value: str) -> User | None:
        row = self.store.one(f"SELECT * FROM users WHERE {where} = ?", (value,))  # noqa: S608 - fixed column names
        if row is None:
            return None
        return User(
            oid=row["oid"],
            upn=row["upn"],
            display_name=row["display_name"],
            mfa_required=bool(row["mfa_required"]),
            enabled=bool(row["enabled"]),
            org_admin=bool(row["org_admin"]),
            removed=bool(row["removed"]),
            descriptor=row["descriptor"],
            password_sha256=row["password_sha256"],
        )

    def user_by_upn(self, upn: str) -> User | None:
        """Look a user up by sign-in name (case-insensitive)."""
        return self._user("upn", upn)

    def user_by_oid(self, oid: str) -> User | None:
        """Look a user up by object id."""
        return self._user("oid", oid)

    def user_by_descriptor(self, descriptor: str) -> User | None:
        """Look a user up by Graph subject descriptor."""
        return self._user("descriptor", descriptor)

    def users(self, *, offset: int = 0, limit: int = 500) -> list[User]:
        """Users in a stable order (by UPN), one page at a time."""
        rows = self.store.query(
            "SELECT oid FROM users ORDER BY upn LIMIT ? OFFSET ?", (limit, offset)
        )
        found = [self.user_by_oid(row["oid"]) for row in rows]
        return [user for user in found if user is not None]

    def set_user_flags(
        self,
        oid: str,
        *,
        enabled: bool | None = None,
        removed: bool | None = None,
        mfa_required: bool | None = None,
        org_admin: bool | None = None,
    ) -> None:
        """Change a user's flags (admin API)."""
        for column, value in (
            ("enabled", enabled),
            ("removed", removed),
            ("mfa_required", mfa_required),
            ("org_admin", org_admin),
        ):
            if value is not None:
                self.store.execute(
                    f"UPDATE users SET {column} = ? WHERE oid = ?",  # noqa: S608 - fixed column names
                    (int(value), oid),
                )

    def set_password(self, oid: str, password: str) -> None:
        """Give a user a new password (admin API's password reset)."""
        self.store.execute(
            "UPDATE users SET password_sha256 = ? WHERE oid = ?",
            (hashlib.sha256(password.encode()).hexdigest(), oid),
        )

    def reset(
        self,
        *,
        keep: set[str],
        passwords: Mapping[str, str] | None = None,
    ) -> None:
        """Back to the seeded directory (the admin API's reset).

        Deletes every user whose object id is not in *keep*, re-enables (un-removes) the kept
        users, restores the seeded users' MFA and org-admin flags (:data:`SEEDED_USER_FLAGS`) and
        sets the passwords in *passwords* (object id -> password) again. Apps are left alone.
        """
        kept = sorted(keep)
        marks = ", ".join("?" for _ in kept)
        with self.store.transaction() as tx:
            tx.execute(f"DELETE FROM users WHERE oid NOT IN ({marks})", kept)  # noqa: S608 - placeholders only
            tx.execute("UPDATE users SET enabled = 1, removed = 0")
            for upn, (mfa_required, org_admin) in SEEDED_USER_FLAGS.items():
                tx.execute(
                    "UPDATE users SET mfa_required = ?, org_admin = ? WHERE upn = ?",
                    (int(mfa_required), int(org_admin), upn),
                )
            for oid, password in (passwords or {}).items():
                tx.execute(
                    "UPDATE users SET password_sha256 = ? WHERE oid = ?",
                    (hashlib.sha256(password.encode()).hexdigest(), oid),
                )

    # apps ----------------------------------------------------------------------------------
    def add_app(
        self,
        *,
        display_name: str,
        public_client: bool,
        client_id: str | None = None,
        secret: str | None = None,
        certificate_pem: str | None = None,
        delegated_scopes: tuple[str, ...] = (),
    ) -> App:
        """Register an app (public client or confidential with a secret and/or certificate)."""
        client_id = client_id or str(uuid.uuid4())
        existing = self.app(client_id)
        if existing is not None:
            return existing
        self.store.execute(
            "INSERT INTO apps (client_id, display_name, sp_oid, public_client, secret,"
            " certificate_pem, delegated_scopes) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                client_id,
                display_name,
                str(uuid.uuid4()),
                int(public_client),
                secret,
                certificate_pem,
                " ".join(delegated_scopes),
            ),
        )
        app = self.app(client_id)
        assert app is not None
        return app

    def app(self, client_id: str) -> App | None:
        """Look an app up by client (application) id."""
        row = self.store.one("SELECT * FROM apps WHERE client_id = ?", (client_id,))
        if row is None:
            return None
        return App(
            client_id=row["client_id"],
            display_name=row["display_name"],
            sp_oid=row["sp_oid"],
            public_client=bool(row["public_client"]),
            delegated_scopes=tuple(row["delegated_scopes"].split()),
            secret=row["secret"],
            certificate_pem=row["certificate_pem"],
        )

    def set_app_certificate(self, client_id: str, certificate_pem: str) -> None:
        """Register (replace) the public certificate an app signs its assertions with."""
        self.store.execute(
            "UPDATE apps SET certificate_pem = ? WHERE client_id = ?", (certificate_pem, client_id)
        )


@dataclass(frozen=True)
class DefaultIdentities:
    """What the ready file tells clients about the seeded identities."""

    rotator: User
    rotator_password: str = field(repr=False)
    org_admin: User = field(repr=False)
    legacy_user: User = field(repr=False)
    legacy_password: str = field(repr=False)
    public_client: App = field(repr=False)
    service_principal: App = field(repr=False)
    service_principal_certificate: Path = field(repr=False)


def _self_signed_certificate(common_name: str) -> tuple[str, str]:
    """Return (certificate PEM, private key PEM) for a service principal's certificate."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return cert_pem, key_pem


def seed_defaults(directory: Directory, state_dir: Path) -> DefaultIdentities:
    """Create the default tenant population on first start; return it on every start."""
    import os

    store = directory.store
    rotator_password = store.meta_or_create("rotator_password", lambda: secrets.token_urlsafe(18))
    legacy_password = store.meta_or_create("legacy_password", lambda: secrets.token_urlsafe(18))
    rotator = directory.add_user(
        upn="svc-patwarden@contoso.example",
        display_name="patwarden rotator (service account)",
        password=rotator_password,
        mfa_required=True,
    )
    org_admin = directory.add_user(
        upn="admin@contoso.example",
        display_name="Org Admin",
        password=secrets.token_urlsafe(18),
        mfa_required=True,
        org_admin=True,
    )
    legacy_user = directory.add_user(
        upn="legacy-svc@contoso.example",
        display_name="Legacy MFA-exempt account",
        password=legacy_password,
        mfa_required=False,
    )
    public_client = directory.add_app(
        display_name="patwarden",
        public_client=True,
        client_id=store.meta_or_create("public_client_id", uuid.uuid4),
        delegated_scopes=PUBLIC_CLIENT_SCOPES,
    )
    cert_path = state_dir / "service-principal.pem"
    sp_id = store.meta_or_create("service_principal_id", uuid.uuid4)
    service_principal = directory.app(sp_id)
    if service_principal is None or not cert_path.exists():
        cert_pem, key_pem = _self_signed_certificate("patwarden-writer")
        fd = os.open(cert_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key_pem + cert_pem)
        if service_principal is None:
            service_principal = directory.add_app(
                display_name="patwarden-writer",
                public_client=False,
                client_id=sp_id,
                secret=secrets.token_urlsafe(30),
                certificate_pem=cert_pem,
            )
        else:
            directory.set_app_certificate(sp_id, cert_pem)
            service_principal = directory.app(sp_id)
            assert service_principal is not None
    return DefaultIdentities(
        rotator=rotator,
        rotator_password=rotator_password,
        org_admin=org_admin,
        legacy_user=legacy_user,
        legacy_password=legacy_password,
        public_client=public_client,
        service_principal=service_principal,
        service_principal_certificate=cert_path,
    )
