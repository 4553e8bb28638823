"""The ``state:`` section: URLs, mappings, and the errors a user sees through ``load_config``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from patwarden.config.model import load_config
from patwarden.config.state import StateConfig, mask_url, parse_state_url
from patwarden.errors import ConfigError

GUID = "00000000-0000-0000-0000-000000000001"


def load(tmp_path: Path, state: Any) -> Any:
    data = {
        "azure": {"tenant_id": GUID},
        "organization": "contoso",
        "identities": {"rotator": {"kind": "user", "client_id": GUID}},
        "state_dir": str(tmp_path / "state"),
    }
    if state is not None:
        data["state"] = state
    path = tmp_path / "patwarden.yaml"
    path.write_text(yaml.safe_dump(data))
    path.chmod(0o600)
    return load_config(path)


def test_without_a_state_section_sqlite_in_state_dir_is_kept(tmp_path: Path) -> None:
    config = load(tmp_path, None)
    assert config.state.backend == "sqlite"
    assert config.state.path is None
    assert config.state.describe() == "sqlite"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://patwarden@db.internal:5432/patwarden?sslmode=verify-full",
            {
                "backend": "postgresql",
                "url": "postgresql://patwarden@db.internal:5432/patwarden?sslmode=verify-full",
            },
        ),
        (
            "azblob://contoso/state?identity=writer",
            {
                "backend": "azblob",
                "account_url": "https://contoso.blob.core.windows.net",
                "container": "state",
                "blob": "patwarden-state.json",
                "identity": "writer",
            },
        ),
        (
            "azblob://contoso.blob.core.usgovcloudapi.net/c/jobs/a.json",
            {
                "backend": "azblob",
                "account_url": "https://contoso.blob.core.usgovcloudapi.net",
                "container": "c",
                "blob": "jobs/a.json",
            },
        ),
        (
            "azblob://127.0.0.1:10000/devstoreaccount1/c",
            {
                "backend": "azblob",
                "account_url": "https://127.0.0.1:10000/devstoreaccount1",
                "container": "c",
                "blob": "patwarden-state.json",
            },
        ),
        (
            "sqlite:/var/lib/patwarden/state.db",
            {"backend": "sqlite", "path": "/var/lib/patwarden/state.db"},
        ),
    ],
)
def test_state_urls(url: str, expected: dict[str, str]) -> None:
    assert parse_state_url(url) == expected


def test_a_mapping_with_its_defaults(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        {"backend": "postgresql", "url": "postgresql://p@h/d", "password": {"env": "PGPW"}},
    )
    assert config.state.failover == timedelta(seconds=30)
    assert config.state.pool_size == 4
    assert config.state.describe() == "postgresql://p@h/d"


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ("mysql://h/d", "unknown state backend 'mysql'"),
        ("postgresql://u:hunter2@h/d", "a password in the URL"),
        ({"backend": "postgresql"}, "needs `url`"),
        (
            {
                "backend": "azblob",
                "account_url": "https://a.blob.core.windows.net",
                "container": "c",
            },
            "needs `identity`",
        ),
        (
            {"backend": "azblob", "account_url": "http://a", "container": "c", "identity": "w"},
            "must be https://",
        ),
        ({"backend": "postgresql", "url": "postgresql://p@h/d", "failover": "1s"}, "at least 3s"),
        (
            {
                "backend": "azblob",
                "account_url": "https://a",
                "container": "c",
                "identity": "w",
                "lease_duration": 90,
            },
            "lease_duration",
        ),
    ],
)
def test_bad_state_sections_are_config_errors_with_their_key_path(
    tmp_path: Path, state: Any, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, state)
    text = str(info.value)
    assert "state" in text
    assert message.lower() in text.lower()
    assert "hunter2" not in text


def test_mask_url_hides_only_the_password() -> None:
    assert mask_url("postgresql://u:pw@h:5432/d") == "postgresql://u:***@h:5432/d"
    assert mask_url("postgresql://u@h/d") == "postgresql://u@h/d"
    assert StateConfig.model_validate("sqlite:x.db").backend == "sqlite"
