"""`patwarden state migrate | check` through the real CLI, into real PostgreSQL and Azurite."""

from __future__ import annotations

import os
from pathlib import Path

from patwarden.config.schema import Config
from patwarden.domain.models import AuditRecord
from patwarden.domain.operation import Step
from patwarden.state.sqlite import SqliteStateStore
from tests.cli.support import cli
from tests.conftest import RunningEmulator
from tests.state.test_azblob import SECRET_ENV, entra_config
from tests.state.test_contract import operation, token_state
from tests.support import clock
from tests.support.configs import save_config, user_identity
from tests.support.state_backends import state_context
from tests.support.state_servers import AZURITE_ACCOUNT, AzuriteServer, PostgresServer


def _sqlite_state(path: Path) -> None:
    with SqliteStateStore(path=path, now=clock.now) as store:
        store.record(operation(Step.PLANNED))
        store.record(operation(Step.CREATING))
        store.record(operation(Step.DONE), token=token_state(), audit=[_audit("rotated")])
        store.append_audit(_audit("adopted"))


def _minimal_config(tmp_path: Path) -> Path:
    guid = "00000000-0000-0000-0000-000000000001"
    data = {
        "azure": {"tenant_id": guid},
        "organization": "contoso",
        "identities": {"rotator": {"kind": "user", "client_id": guid}},
        "state_dir": str(tmp_path / "state"),
    }
    return save_config(tmp_path / "patwarden.yaml", data)


def _audit(kind: str) -> AuditRecord:
    return AuditRecord(at=clock.now(), kind=kind, token_name="t", detail=(("sink", "kv"),))


def test_migrate_to_postgresql_copies_everything_and_check_verifies_it(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    source = tmp_path / "old" / "state.db"
    _sqlite_state(source)
    config = _minimal_config(tmp_path)
    url = postgres_server.new_database()
    run = cli("state", "migrate", "--from", f"sqlite:{source}", "--to", url, config=config)
    assert run.code == 0, run.output
    assert f"Copied 1 tokens, 1 operations, 3 journal entries, 2 audit records from {source}" in (
        run.stdout
    )
    assert "Verified: the copy reads back identical" in run.stdout
    assert f"Next: set `state: {url}` in the config" in run.stdout
    check = cli("state", "check", "--state", url, config=config)
    assert check.code == 0, check.output
    assert "OK: the state is sound." in check.stdout
    app = state_context(Config.model_validate({"state": url}))
    with app, app.state_store() as store:
        assert store.load_token("t") == token_state()
        assert [e.step for e in store.journal("1" * 32)] == ["planned", "creating", "done"]
        assert [r.kind for r in store.audit()] == ["rotated", "adopted"]
    again = cli("state", "migrate", "--from", f"sqlite:{source}", "--to", url, config=config)
    assert again.code == 6
    assert "is not empty; migrate into an empty one" in again.output
    assert "Traceback" not in again.output


def test_migrate_to_azure_blob_as_the_writer_identity(
    emulator: RunningEmulator, azurite_server: AzuriteServer, tmp_path: Path
) -> None:
    source = tmp_path / "state.db"
    _sqlite_state(source)
    container = azurite_server.new_container()
    data = entra_config(emulator, azurite_server, tmp_path, container)
    data["identities"]["rotator"] = user_identity(emulator)
    config = save_config(tmp_path / "patwarden.yaml", data)
    target = (
        f"azblob://127.0.0.1:{azurite_server.port}/{AZURITE_ACCOUNT}/{container}?identity=writer"
    )
    env = {SECRET_ENV: emulator["identities"]["service_principal"]["client_secret"]}
    run = cli(
        "state", "migrate", "--from", f"sqlite:{source}", "--to", target, config=config, env=env
    )
    assert run.code == 0, run.output
    assert "Copied 1 tokens, 1 operations, 3 journal entries, 2 audit records" in run.stdout
    check = cli("state", "check", config=config, env=env)  # the config's own state: the blob
    assert check.code == 0, check.output
    assert f"/{container}/patwarden-state.json: 1 tokens" in check.stdout
    assert os.environ.get(SECRET_ENV) is None


def test_bad_urls_and_a_missing_source_are_clear_errors(tmp_path: Path) -> None:
    config = _minimal_config(tmp_path)
    bad = cli("state", "migrate", "--from", "mysql://x/y", "--to", "azblob://a/c", config=config)
    assert bad.code == 2
    assert "--from 'mysql://x/y' is not a state this patwarden can open" in bad.output
    assert "unknown state backend 'mysql'" in bad.output
    to_sqlite = cli(
        "state", "migrate", "--from", "sqlite:/a", "--to", f"sqlite:{tmp_path}/b", config=config
    )
    assert to_sqlite.code == 2
    assert "--to must be a postgresql:// or azblob:// state" in to_sqlite.output
    secret = cli(
        "state", "migrate", "--from", "sqlite:/a", "--to", "postgresql://u:hunter2@h/d",
        config=config,
    )  # fmt: skip
    assert secret.code == 2
    assert "hunter2" not in secret.output
    missing = cli(
        "state", "migrate", "--from", f"sqlite:{tmp_path}/none.db", "--to",
        "postgresql://u@127.0.0.1:1/d", config=config,
    )  # fmt: skip
    assert missing.code == 6
    assert "There is no state at" in missing.output
    assert not (tmp_path / "none.db").exists()
