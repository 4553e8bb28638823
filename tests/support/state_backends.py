"""The three state backends as the tests configure them (``state:`` sections and contexts).

:func:`state_section` gives the ``state:`` mapping of a fresh, empty state on each backend:
SQLite in *tmp_path*, a new PostgreSQL database, a new Azurite container (its documented account
key read from the environment: the Entra path is tested in tests/state/test_azblob.py and the
scheduled-job simulation). :func:`state_context` wraps it in an
:class:`~patwarden.app.context.AppContext` (the only place stores are built).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from patwarden.app.context import AppContext
from patwarden.config.schema import Config
from tests.support import clock
from tests.support.state_servers import AZURITE_KEY, AzuriteServer, PostgresServer

BACKENDS = ("sqlite", "postgresql", "azblob")
KEY_ENV = "PATWARDEN_TEST_AZURITE_KEY"


def state_section(
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    **settings: Any,
) -> dict[str, Any]:
    """The ``state:`` mapping of a new, empty state on *backend*."""
    if backend == "sqlite":
        return {"backend": "sqlite", "path": str(tmp_path / "state" / "state.db"), **settings}
    if backend == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        return {"backend": "postgresql", "url": server.new_database(), **settings}
    azurite: AzuriteServer = request.getfixturevalue("azurite_server")
    os.environ[KEY_ENV] = AZURITE_KEY  # the autouse clean_environ fixture restores it
    return {
        "backend": "azblob",
        "account_url": azurite.account_url,
        "container": azurite.new_container(),
        "account_key": {"env": KEY_ENV},
        **settings,
    }


def state_config(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, **settings: Any
) -> Config:
    """A config whose only content is the state section (and Azurite's CA when needed)."""
    data: dict[str, Any] = {
        "state_dir": str(tmp_path / "state"),
        "state": state_section(backend, tmp_path, request, **settings),
    }
    if backend == "azblob":
        azurite: AzuriteServer = request.getfixturevalue("azurite_server")
        data["azure"] = {"ca_bundle": str(azurite.ca_pem)}
    return Config.model_validate(data)


def state_context(config: Config) -> AppContext:
    """A context over *config* (close it); a second one stands for another process."""
    return AppContext(config=config, clock=clock.TestClock())
