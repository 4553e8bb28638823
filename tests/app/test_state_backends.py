"""The composition root builds the configured state backend (the contract suite drives all three:
tests/state/test_contract.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from patwarden.app.context import AppContext
from patwarden.config.schema import Config
from patwarden.errors import ConfigError
from patwarden.state.dump import StateDump
from patwarden.state.sqlite import SqliteStateStore
from tests.support import clock
from tests.support.state_servers import PostgresServer


def test_without_a_state_section_it_is_sqlite_in_state_dir(tmp_path: Path) -> None:
    config = Config.model_validate({"state_dir": str(tmp_path / "state")})
    with AppContext(config=config, clock=clock.TestClock()) as app:
        backend = app.state_backend()
        assert app.state_backend() is backend  # built once
        assert backend.where == str(tmp_path / "state" / "state.db") == app.state_where
        assert not backend.exists()
        assert app.leadership() is None  # serve keeps its lock file
        with app.state_store() as store:
            assert isinstance(store, SqliteStateStore)
        assert backend.exists()
        with pytest.raises(ConfigError, match="postgresql:// or azblob://"):
            backend.import_dump(StateDump())


def test_a_sqlite_path_elsewhere(tmp_path: Path) -> None:
    config = Config.model_validate({"state": f"sqlite:{tmp_path / 'elsewhere.db'}"})
    with AppContext(config=config, clock=clock.TestClock()) as app:
        assert app.state_path == tmp_path / "elsewhere.db"
        app.state_store().close()
    assert (tmp_path / "elsewhere.db").exists()


def test_postgresql_stores_are_fenced_once_leadership_was_asked_for(
    postgres_server: PostgresServer,
) -> None:
    config = Config.model_validate({"state": postgres_server.new_database()})
    with AppContext(config=config, clock=clock.TestClock()) as app:
        unfenced = app.state_store()
        leadership = app.leadership()
        assert leadership is not None
        assert app.leadership() is leadership
        assert app.state_where.startswith("postgresql://patwarden@127.0.0.1:")
        fenced = app.state_store()
        assert unfenced._fence is None
        assert fenced._fence is leadership
        other = AppContext(config=config, clock=clock.TestClock())
        other.adopt_leadership(leadership)
        assert other.state_store()._fence is leadership
        other.close()
