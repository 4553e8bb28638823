"""Everything one running emulator shares between its feature modules."""

from __future__ import annotations

import secrets
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patwarden_emulator.directory import DefaultIdentities, Directory, seed_defaults
from patwarden_emulator.keys import SigningKey
from patwarden_emulator.store import Store
from patwarden_emulator.tls import TlsFiles, ensure_tls

DB_FILE = "emulator.db"
_MAX_REMEMBERED_SECRETS = 200_000


@dataclass
class Emulator:
    """One emulated tenant + organization + key vault, and the runtime knobs the admin API turns.

    ``base_url`` is the single HTTPS origin every emulated service is served from:
    Entra at ``/{tenant}/...``, Azure DevOps at ``/devops/{org}/...``, its vssps host at
    ``/vssps/{org}/...``, Key Vault at ``/secrets/...`` and the admin API at ``/_admin/...``.
    """

    store: Store
    directory: Directory
    keys: SigningKey
    identities: DefaultIdentities
    tls: TlsFiles
    state_dir: Path
    base_url: str
    tenant_id: str
    organization: str
    organization_id: str
    auto_approve_device_codes: bool = False
    # The bearer token the admin API (/_admin) requires: random per process, written only to the
    # 0600 ready file, so another local user cannot read issued secrets or grant vault roles.
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    # Feature modules keep their runtime (non-persistent) objects here, keyed by module name.
    runtime: dict[str, Any] = field(default_factory=dict)
    # Every secret value the emulator handed out since the last reset (PATs, refresh and access
    # tokens), so leak-scanning tests can look for them in patwarden's output. Admin API only.
    issued_secrets: list[tuple[str, str]] = field(default_factory=list, repr=False)
    _issued_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def remember_secret(self, kind: str, value: str) -> None:
        """Record a secret value this emulator issued (kind: "pat", "refresh_token", ...)."""
        with self._issued_lock:
            if len(self.issued_secrets) < _MAX_REMEMBERED_SECRETS:
                self.issued_secrets.append((kind, value))

    @classmethod
    def open(
        cls,
        *,
        state_dir: Path,
        base_url: str,
        organization: str = "contoso",
        auto_approve_device_codes: bool = False,
    ) -> Emulator:
        """Open (or initialise) the emulator state in *state_dir*."""
        store = Store(state_dir / DB_FILE)
        directory = Directory(store)
        return cls(
            store=store,
            directory=directory,
            keys=SigningKey(store),
            identities=seed_defaults(directory, state_dir),
            tls=ensure_tls(state_dir),
            state_dir=state_dir,
            base_url=base_url.rstrip("/"),
            tenant_id=store.meta_or_create("tenant_id", uuid.uuid4),
            organization=organization,
            organization_id=store.meta_or_create("organization_id", uuid.uuid4),
            auto_approve_device_codes=auto_approve_device_codes,
        )

    # URLs the ready file advertises ------------------------------------------------------------
    @property
    def authority_host(self) -> str:
        return self.base_url

    @property
    def azure_devops_url(self) -> str:
        return f"{self.base_url}/devops"

    @property
    def vssps_url(self) -> str:
        return f"{self.base_url}/vssps"

    @property
    def key_vault_url(self) -> str:
        return self.base_url

    @property
    def admin_url(self) -> str:
        return f"{self.base_url}/_admin"

    @property
    def issuer(self) -> str:
        """The ``iss`` of v1 access tokens (what Azure DevOps receives)."""
        return f"https://sts.windows.net/{self.tenant_id}/"

    @property
    def issuer_v2(self) -> str:
        """The issuer the OpenID configuration and id tokens use."""
        return f"{self.authority_host}/{self.tenant_id}/v2.0"
