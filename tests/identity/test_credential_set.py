"""CredentialSet: one lazily built, shared credential per configured identity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from patwarden.config.model import load_config
from patwarden.errors import ConfigError
from patwarden.identity.credential_set import CredentialSet
from patwarden.identity.legacy import LegacyPasswordCredential
from patwarden.identity.secret_refs import SecretUnavailable
from patwarden.identity.single_flight import SingleFlightCredential
from patwarden.identity.user import UserCredential

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "11111111-2222-3333-4444-555555555555"


def credential_set(tmp_path: Path, identities: dict[str, Any]) -> CredentialSet:
    path = tmp_path / "patwarden.yaml"
    data = {
        "organization": "contoso",
        "azure": {"tenant_id": TENANT},
        "identities": {"rotator": {"kind": "user", "client_id": CLIENT}, **identities},
    }
    path.write_text(yaml.safe_dump(data))
    path.chmod(0o600)
    return CredentialSet(load_config(path))


def test_each_kind_builds_its_credential_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.identity import (
        AzureCliCredential,
        ClientSecretCredential,
        ManagedIdentityCredential,
        WorkloadIdentityCredential,
    )

    monkeypatch.setenv("WRITER_SECRET", "not-a-real-secret")
    token_file = tmp_path / "token"
    token_file.write_text("jwt")
    creds = credential_set(
        tmp_path,
        {
            "writer": {
                "kind": "service_principal",
                "client_id": CLIENT,
                "client_secret": {"env": "WRITER_SECRET"},
            },
            "mi": {"kind": "managed_identity", "client_id": CLIENT},
            "wif": {
                "kind": "workload_identity",
                "client_id": CLIENT,
                "token_file": str(token_file),
            },
            "cli": {"kind": "azure_cli"},
            "old": {
                "kind": "legacy_password",
                "client_id": CLIENT,
                "username": "old@contoso.com",
                "password": {"env": "P"},
                "legacy_password_flow": True,
            },
        },
    )
    expected = {
        "rotator": UserCredential,
        "writer": ClientSecretCredential,
        "mi": ManagedIdentityCredential,
        "wif": WorkloadIdentityCredential,
        "cli": AzureCliCredential,
        "old": LegacyPasswordCredential,
    }
    for name, cls in expected.items():
        first = creds.get(name)
        built = first.inner if isinstance(first, SingleFlightCredential) else first
        assert isinstance(built, cls), name
        assert isinstance(first, SingleFlightCredential) is (cls is not UserCredential), name
        assert creds.get(name) is first
    assert "not-a-real-secret" not in repr(creds)
    creds.close()


def test_unknown_identity(tmp_path: Path) -> None:
    creds = credential_set(tmp_path, {})
    with pytest.raises(ConfigError, match="no identity named 'ghost'") as caught:
        creds.get("ghost")
    assert "configured identities: rotator" in str(caught.value)


def test_only_user_identities_log_in(tmp_path: Path) -> None:
    creds = credential_set(tmp_path, {"mi": {"kind": "managed_identity"}})
    with pytest.raises(ConfigError, match="only kind: user identities log in"):
        creds.user("mi")
    assert isinstance(creds.user("rotator"), UserCredential)


def test_missing_secret_is_reported_when_the_credential_is_built(tmp_path: Path) -> None:
    creds = credential_set(
        tmp_path,
        {
            "writer": {
                "kind": "service_principal",
                "client_id": CLIENT,
                "client_secret": {"env": "UNSET_X"},
            }
        },
    )
    with pytest.raises(SecretUnavailable, match="UNSET_X is not set"):
        creds.get("writer")
