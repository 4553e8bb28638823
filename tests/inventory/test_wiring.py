"""Wiring from the config: which identity, which organizations, managed ids, request counting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from patwarden.app.context import AppContext
from patwarden.clock import SystemClock
from patwarden.config.model import Config, load_config
from patwarden.domain.models import IssuedPat, ManagedTokenState
from patwarden.errors import ConfigError
from patwarden.inventory.wiring import (
    CountingTransport,
    audit_log,
    auditor_name,
    managed_ids,
    organizations,
    state_path,
)
from patwarden.state import SqliteStateStore

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "66666666-7777-8888-9999-000000000000"


def config(tmp_path: Path, **extra: Any) -> Config:
    data = {
        "azure": {"tenant_id": TENANT},
        "organization": "contoso",
        "state_dir": str(tmp_path / "state"),
        "identities": {
            "rotator": {"kind": "user", "client_id": CLIENT},
            "secops": {"kind": "user", "client_id": CLIENT},
        },
        **extra,
    }
    path = tmp_path / "patwarden.yaml"
    path.write_text(yaml.safe_dump(data))
    path.chmod(0o600)
    return load_config(path)


def test_identity_choice(tmp_path: Path) -> None:
    assert auditor_name(config(tmp_path, auditor="secops"), None) == "secops"
    assert auditor_name(config(tmp_path, auditor="secops"), "rotator") == "rotator"
    with pytest.raises(ConfigError, match="No identity is configured") as caught:
        auditor_name(config(tmp_path), None)
    assert "auditor:" in str(caught.value)
    with pytest.raises(ConfigError, match="'ghost' is not defined"):
        auditor_name(config(tmp_path), "ghost")


def test_organizations(tmp_path: Path) -> None:
    assert organizations(config(tmp_path), ()) == ("contoso",)
    assert organizations(config(tmp_path), ("a", "b", "a")) == ("a", "b")
    several = config(tmp_path, organization=None, organizations=["x", "y"])
    assert organizations(several, ()) == ("x", "y")


def test_managed_ids_come_from_the_state_store(tmp_path: Path) -> None:
    loaded = config(tmp_path)
    path = state_path(loaded)
    assert managed_ids(AppContext(config=loaded, clock=SystemClock())) == frozenset()
    assert not path.exists()  # reading never creates a store
    now = datetime(2026, 11, 27, tzinfo=UTC)

    def issued(i: str) -> IssuedPat:
        return IssuedPat(
            authorization_id=i, display_name=i, valid_from=now, valid_to=now + timedelta(days=30)
        )

    path.parent.mkdir(parents=True)
    with SqliteStateStore(path=path, now=lambda: now) as store:
        store.save_token(
            ManagedTokenState(
                token_name="flux-git",
                organization="contoso",
                current=issued("AAAA"),
                previous=issued("bbbb"),
            )
        )
    with AppContext(config=loaded, clock=SystemClock()) as app:
        assert managed_ids(app) == frozenset({"aaaa", "bbbb"})


def test_audit_log_appends_to_the_state_store(tmp_path: Path) -> None:
    from patwarden.domain.models import AuditRecord

    loaded = config(tmp_path, state_dir=str(tmp_path / "new"))
    path = state_path(loaded)
    at = datetime(2026, 11, 27, tzinfo=UTC)
    with AppContext(config=loaded, clock=SystemClock()) as app, audit_log(app) as append:
        append(AuditRecord(at=at, kind="inventory.revoked", authorization_id="x"))
    with SqliteStateStore(path=path, now=lambda: at) as store:
        assert [(r.kind, r.authorization_id) for r in store.audit()] == [("inventory.revoked", "x")]


def test_counting_transport() -> None:
    counter = CountingTransport(httpx.MockTransport(lambda request: httpx.Response(204)))
    with httpx.Client(transport=counter) as client:
        for _ in range(3):
            client.get("https://example.invalid/")
    assert counter.requests == 3
