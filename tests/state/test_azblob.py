"""The Azure Blob state on Azurite: Entra sign-in from the emulator, lease fencing, bad blobs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AzureNamedKeyCredential
from azure.storage.blob import BlobClient, BlobLeaseClient

from patwarden.app.context import AppContext
from patwarden.config.schema import Config
from patwarden.domain.models import AuditRecord
from patwarden.errors import StateError
from patwarden.rotation.ports import StateFenced, StateLocked
from patwarden.state.azblob import AzureBlobBackend
from patwarden.state.codec import StateCorrupt
from tests.conftest import RunningEmulator
from tests.state.test_contract import operation, token_state
from tests.support import clock
from tests.support.configs import azure_settings, sp_identity
from tests.support.state_servers import AZURITE_ACCOUNT, AZURITE_KEY, AzuriteServer

SECRET_ENV = "PATWARDEN_TEST_STATE_WRITER_SECRET"


def trust_both(emulator: RunningEmulator, azurite: AzuriteServer, tmp_path: Path) -> str:
    """A CA bundle trusting the emulator and Azurite (``azure.ca_bundle`` takes one file)."""
    bundle = tmp_path / "ca.pem"
    bundle.write_text(Path(emulator.ca_bundle).read_text() + azurite.ca_pem.read_text())
    return str(bundle)


def entra_config(
    emulator: RunningEmulator, azurite: AzuriteServer, tmp_path: Path, container: str
) -> dict[str, Any]:
    """A config whose Blob state is written by the emulator's service principal (Entra)."""
    return {
        "azure": {**azure_settings(emulator), "ca_bundle": trust_both(emulator, azurite, tmp_path)},
        "organization": emulator["organization"],
        "state_dir": str(tmp_path / "state"),
        "identities": {"writer": sp_identity(emulator, SECRET_ENV)},
        "state": f"azblob://127.0.0.1:{azurite.port}/{AZURITE_ACCOUNT}/{container}?identity=writer",
    }


def _client(azurite: AzuriteServer, container: str, blob: str = "state.json") -> BlobClient:
    key = AzureNamedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY)
    return BlobClient(
        azurite.account_url,
        container_name=container,
        blob_name=blob,
        credential=key,
        connection_verify=str(azurite.ca_pem),
    )


@pytest.fixture
def container(azurite_server: AzuriteServer) -> str:
    return azurite_server.new_container()


@pytest.fixture
def pair(azurite_server: AzuriteServer, container: str) -> Iterator[tuple[Any, Any]]:
    """Two backends on one blob: two runs on two agents."""
    first = AzureBlobBackend(client=_client(azurite_server, container), now=clock.now)
    second = AzureBlobBackend(client=_client(azurite_server, container), now=clock.now)
    yield first, second
    first.close()
    second.close()


def test_the_writer_signs_in_with_entra_and_the_state_lands_in_the_blob(
    emulator: RunningEmulator,
    azurite_server: AzuriteServer,
    container: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SECRET_ENV, emulator["identities"]["service_principal"]["client_secret"])
    config = Config.model_validate(entra_config(emulator, azurite_server, tmp_path, container))
    with AppContext(config=config, clock=clock.TestClock()) as app:
        assert app.state_where.endswith(f"/{container}/patwarden-state.json")
        with app.state_store() as store:
            store.record(operation(), token=token_state(), audit=[_audit()])
    blob = _client(azurite_server, container, "patwarden-state.json")
    raw = blob.download_blob().readall()
    assert b'"format":"patwarden-state"' in raw
    assert blob.get_blob_properties().lease.state == "available"  # released after the write
    with AppContext(config=config, clock=clock.TestClock()) as again, again.state_store() as store:
        assert store.load_token("t") == token_state()


def test_a_wrong_secret_is_a_clear_state_error(
    emulator: RunningEmulator,
    azurite_server: AzuriteServer,
    container: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SECRET_ENV, "not-the-secret")
    config = Config.model_validate(entra_config(emulator, azurite_server, tmp_path, container))
    with (
        AppContext(config=config, clock=clock.TestClock()) as app,
        pytest.raises(StateError) as info,
    ):
        app.state_store()
    assert "identity 'writer' could not sign in to Azure Storage" in str(info.value)
    assert "AADSTS7000215" in str(info.value)
    assert "not-the-secret" not in str(info.value)


def test_a_run_whose_lease_was_taken_writes_nothing(pair: tuple[Any, Any]) -> None:
    first, second = pair
    mine = first.store()
    with mine.token_lock("t", timeout=5):
        mine.record(operation())
        # The lease is taken from under this run (it was paused past the lease, and another
        # run found it lapsed): simulated by breaking it and letting the other run take it.
        BlobLeaseClient(first.client).break_lease(lease_break_period=0)
        with second.store().token_lock("t", timeout=5):
            with pytest.raises(StateFenced, match="changed hands"):
                mine.record(operation(op_id="2" * 32))
            second.store().append_audit(_audit())
    theirs = second.store()
    assert [e.step for e in theirs.journal("1" * 32)] == ["planned"]
    assert theirs.load_operation("2" * 32) is None
    assert [r.kind for r in theirs.audit()] == ["rotated"]


def test_a_leased_state_makes_other_runs_wait_then_gives_up(pair: tuple[Any, Any]) -> None:
    first, second = pair
    second._write_timeout = 1.0
    with (
        first.store().token_lock("a", timeout=5),
        pytest.raises(StateLocked, match="another patwarden run"),
    ):
        second.store().save_token(token_state("b"))  # waits a second for the lease
    second.store().save_token(token_state("b"))
    assert [t.token_name for t in first.store().tokens()] == ["b"]


def test_a_blob_that_is_not_a_state_is_refused(
    azurite_server: AzuriteServer, container: str
) -> None:
    _client(azurite_server, container).upload_blob(b"terraform state, not ours")
    with pytest.raises(StateCorrupt, match="not a patwarden state"):
        AzureBlobBackend(client=_client(azurite_server, container), now=clock.now)


def test_a_missing_container_names_the_fix(azurite_server: AzuriteServer) -> None:
    with pytest.raises(StateError) as info:
        AzureBlobBackend(client=_client(azurite_server, "no-such-container"), now=clock.now)
    assert "ContainerNotFound" in str(info.value)
    assert "Create the container" in str(info.value.hint)


def _audit() -> AuditRecord:
    return AuditRecord(at=clock.now() + timedelta(seconds=1), kind="rotated", token_name="t")
