"""SinkWiring: config + credential set → the engine's sink resolver, against the emulator."""

from __future__ import annotations

import logging
import threading
from contextlib import nullcontext as _nothing
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from patwarden.config.model import Config
from patwarden.domain.models import TokenSpec
from patwarden.identity.credential_set import CredentialSet
from patwarden.plugins.testing import fake_meta, fake_pat
from patwarden.sinks.errors import SinkConfigError, SinkUnavailable
from patwarden.sinks.file import FileSink
from patwarden.sinks.key_vault import KeyVaultSink
from patwarden.sinks.variable_group import VariableGroupSink
from patwarden.sinks.wiring import SinkWiring, warm, warming
from tests.conftest import RunningEmulator
from tests.support.configs import azure_settings, sp_identity
from tests.support.sinks import create_group, group_variables


def emulator_config(emulator: RunningEmulator) -> Config:
    return Config.model_validate(
        {
            "azure": azure_settings(emulator),
            "organization": emulator["organization"],
            "identities": {"writer": sp_identity(emulator, "PATWARDEN_TEST_WRITER_SECRET")},
        }
    )


def token(emulator: RunningEmulator, *sinks: Any) -> TokenSpec:
    return TokenSpec(
        name="flux-git",
        organization=str(emulator["organization"]),
        scopes=("vso.code",),
        lifetime=timedelta(days=30),
        rotate_before=timedelta(days=7),
        revoke_after=timedelta(days=1),
        sinks=sinks,
    )


@pytest.fixture
def wiring(emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv(
        "PATWARDEN_TEST_WRITER_SECRET", emulator["identities"]["service_principal"]["client_secret"]
    )
    credentials = CredentialSet(emulator_config(emulator))
    with SinkWiring(config=credentials.config, credentials=credentials) as built:
        yield built
    credentials.close()


def test_resolve_builds_every_kind_once_and_they_write(
    emulator: RunningEmulator, wiring: SinkWiring, tmp_path: Path
) -> None:
    group_id = create_group(emulator, variables={})
    spec = token(
        emulator,
        {"kind": "key_vault", "vault_url": emulator["key_vault_url"], "secret": "flux-git-pat"},
        {"kind": "variable_group", "project": "infra", "group": "gitops", "variable": "FLUX_PAT"},
        {"kind": "file", "path": str(tmp_path / "pat")},
    )
    sinks = wiring.resolve(spec)
    assert [type(s) for s in sinks] == [KeyVaultSink, VariableGroupSink, FileSink]
    assert wiring.resolve(spec) is sinks
    pat, meta = fake_pat(), fake_meta()
    for sink in sinks:
        assert sink.write(pat, meta).authorization_id == meta.authorization_id
    assert sinks[0].read_back() == pat
    assert sinks[2].read_back() == pat
    assert group_variables(emulator, group_id)["FLUX_PAT"]["value"] == pat.reveal()
    assert pat.reveal() not in repr(wiring)


def test_a_bad_entry_is_named_by_its_place_in_the_config(
    emulator: RunningEmulator, wiring: SinkWiring
) -> None:
    spec = token(
        emulator, {"kind": "file", "path": "/srv/flux/pat"}, {"kind": "key_vault", "secret": "s"}
    )
    with pytest.raises(SinkConfigError) as caught:
        wiring.resolve(spec)
    assert "tokens.flux-git.sinks[1].vault_url: Field required" in str(caught.value)


def test_an_entry_that_is_not_a_mapping_is_refused(
    emulator: RunningEmulator, wiring: SinkWiring
) -> None:
    with pytest.raises(SinkConfigError, match=r"tokens\.flux-git\.sinks\[0\]: must be a mapping"):
        wiring.resolve(token(emulator, "key_vault"))


def test_warming_gets_each_vault_identitys_token_once_and_survives_a_broken_entry(
    emulator: RunningEmulator, wiring: SinkWiring, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    vault = {"kind": "key_vault", "vault_url": emulator["key_vault_url"]}
    specs = [
        token(emulator, {"kind": "key_vault", "secret": "s"}),  # no vault_url: cannot be built
        *(replace(token(emulator, {**vault, "secret": f"s{i}"}), name=f"t{i}") for i in range(3)),
        replace(token(emulator, {"kind": "file", "path": str(tmp_path / "pat")}), name="f"),
    ]
    emulator.admin("DELETE", "/requests")
    warmers = wiring.warmers(specs)
    assert len(warmers) == 3, "one per Key Vault sink; the file sink has nothing to get"
    assert emulator.admin("GET", "/requests?since=0").json()["requests"] == [], "built only"
    warm(warmers)
    log = emulator.admin("GET", "/requests?since=0").json()["requests"]
    token_requests = [e for e in log if e["path"].endswith("/oauth2/v2.0/token")]
    assert len(token_requests) == 1, "one Key Vault token for the vault's identity"
    assert not [e for e in log if "/secrets/" in e["path"]], "nothing is read or written"
    sink = wiring.resolve(specs[1])[0]
    assert isinstance(sink, KeyVaultSink)
    assert sink.current_version() is None
    log = emulator.admin("GET", "/requests?since=0").json()["requests"]
    assert len([e for e in log if e["path"].endswith("/oauth2/v2.0/token")]) == 1, "reused"

    def broken() -> None:
        raise SinkUnavailable("the vault did not answer")

    called: list[int] = []
    with caplog.at_level(logging.DEBUG, logger="patwarden.sinks.wiring"):
        warm([broken, lambda: called.append(1)])
    assert called == [1], "a failure does not stop the others"
    assert "getting a sink's credentials ahead: SinkUnavailable" in caplog.text


@pytest.mark.parametrize("fails", [False, True])
def test_warming_ends_only_after_its_thread(fails: bool) -> None:
    # The process may exit right after the block: a warm-up still inside OpenSSL would crash it.
    started, release = threading.Event(), threading.Event()
    done: list[int] = []

    def slow() -> None:
        started.set()
        release.wait(10)
        done.append(1)

    with pytest.raises(RuntimeError) if fails else _nothing(), warming([slow]):
        assert started.wait(10)
        threading.Timer(0.2, release.set).start()
        if fails:
            raise RuntimeError("the sign-in was refused")
    assert done == [1]
    assert "patwarden-warm-sinks" not in [t.name for t in threading.enumerate()]


def test_warming_nothing_starts_no_thread() -> None:
    before = threading.active_count()
    with warming([]):
        assert threading.active_count() == before
