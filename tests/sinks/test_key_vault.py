"""The Key Vault sink against the emulated vault over real HTTPS: RBAC, TLS, versions and tags.

The sink talks to Key Vault over httpx (sinks/key_vault_client.py); the outside world here (a
consumer, a person editing the vault) uses the official ``SecretClient``, so what the sink stores
is proven readable by the SDK consumers use."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from datetime import UTC
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from patwarden.plugins.testing import SinkContract, fake_meta, fake_pat
from patwarden.rotation.ports import RevocationTagging, SinkVersion
from patwarden.sinks.client_pool import ClientPool
from patwarden.sinks.errors import SinkConfigError, SinkReadFailed, SinkUnavailable
from patwarden.sinks.key_vault import CONTENT_TYPE, KeyVaultSink
from patwarden.sinks.spec import SinkContext
from tests.conftest import RunningEmulator
from tests.support.sinks import key_vault_versions
from tests.support.tokens import sp_credential

if TYPE_CHECKING:
    from azure.keyvault.secrets import SecretClient

_names = itertools.count()


def versions(emulator: RunningEmulator, name: str) -> list[dict[str, Any]]:
    """Every stored version with its value, newest last (emulator admin API)."""
    return sorted(key_vault_versions(emulator, name), key=lambda v: (v["created"], v["updated"]))


@pytest.fixture
def make_sink(emulator: RunningEmulator, writer_context: SinkContext) -> Iterator[Any]:
    made: list[KeyVaultSink] = []

    def make(context: SinkContext = writer_context, **keys: Any) -> KeyVaultSink:
        spec = {
            "kind": "key_vault",
            "vault_url": emulator["key_vault_url"],
            "secret": f"flux-git-pat-{next(_names)}",
            **keys,
        }
        sink = KeyVaultSink.from_spec(spec, context)
        made.append(sink)
        return sink

    yield make
    for sink in made:
        sink.client.close()


@pytest.fixture
def sdk(emulator: RunningEmulator) -> Iterator[SecretClient]:
    """The official SecretClient as a consumer (or a person) uses it, on the emulated vault."""
    from azure.keyvault.secrets import SecretClient

    credential = sp_credential(emulator)
    client = SecretClient(
        emulator["key_vault_url"],
        credential,
        verify_challenge_resource=False,  # the emulator is no *.vault.azure.net host
        connection_verify=emulator.ca_bundle,
    )
    with client, credential:
        yield client


class TestKeyVaultContract(SinkContract):
    kind = "key_vault"

    @pytest.fixture
    def sink(self, make_sink: Any) -> KeyVaultSink:
        sink: KeyVaultSink = make_sink()
        return sink


def test_a_version_carries_content_type_expiry_and_tags(
    emulator: RunningEmulator, make_sink: Any
) -> None:
    sink = make_sink()
    pat, meta = fake_pat(), fake_meta("flux-git")
    version = sink.write(pat, meta)
    [stored] = versions(emulator, sink.spec.secret)
    assert stored["version"] == version.ref
    assert stored["value"] == pat.reveal()
    assert stored["contentType"] == CONTENT_TYPE
    assert stored["exp"] == int(meta.valid_to.timestamp())
    assert stored["tags"] == {
        "managedBy": "patwarden",
        "patwardenToken": "flux-git",
        "authorizationId": meta.authorization_id,
        "operationId": meta.operation_id,
        "validTo": meta.valid_to.isoformat(),
    }


def test_a_consumer_reading_with_the_sdk_gets_what_the_sink_wrote(
    make_sink: Any, sdk: SecretClient
) -> None:
    sink = make_sink()
    pat, meta = fake_pat(), fake_meta("flux-git")
    version = sink.write(pat, meta)
    read = sdk.get_secret(sink.spec.secret)
    assert read.value == pat.reveal()
    assert read.properties.version == version.ref
    assert read.properties.content_type == CONTENT_TYPE
    assert read.properties.expires_on == meta.valid_to.astimezone(UTC).replace(microsecond=0)
    assert (read.properties.tags or {})["authorizationId"] == meta.authorization_id


def test_restore_sets_the_old_value_as_a_new_version_and_disables_ours(
    emulator: RunningEmulator, make_sink: Any
) -> None:
    sink = make_sink()
    old_pat, old_meta = fake_pat(), fake_meta()
    old = sink.write(old_pat, old_meta)
    new = sink.write(fake_pat(), fake_meta())
    assert sink.restore(old) is True
    stored = {v["version"]: v for v in versions(emulator, sink.spec.secret)}
    assert stored[new.ref]["enabled"] is False
    current = sink.current_version()
    assert current is not None
    assert current.ref not in (old.ref, new.ref)
    assert stored[current.ref]["value"] == old_pat.reveal()
    assert stored[current.ref]["tags"]["authorizationId"] == old_meta.authorization_id
    assert sink.read_back() == old_pat


def test_restore_re_enables_a_disabled_previous_version(
    emulator: RunningEmulator, make_sink: Any, sdk: SecretClient
) -> None:
    sink = make_sink()
    old_pat = fake_pat()
    old = sink.write(old_pat, fake_meta())
    sdk.update_secret_properties(sink.spec.secret, old.ref, enabled=False)
    sink.write(fake_pat(), fake_meta())
    assert sink.restore(old) is True
    assert sink.read_back() == old_pat


def test_restore_of_an_unreadable_version_disables_ours_and_says_false(
    emulator: RunningEmulator, make_sink: Any
) -> None:
    sink = make_sink()
    sink.write(fake_pat(), fake_meta())
    new = sink.write(fake_pat(), fake_meta())
    assert sink.restore(SinkVersion(ref="0" * 32, authorization_id=None)) is False
    stored = {v["version"]: v for v in versions(emulator, sink.spec.secret)}
    assert stored[new.ref]["enabled"] is False
    assert sink.current_version() is None


def test_restore_none_disables_what_we_wrote(emulator: RunningEmulator, make_sink: Any) -> None:
    sink = make_sink()
    assert sink.current_version() is None
    sink.write(fake_pat(), fake_meta())
    assert sink.restore(None) is True
    assert sink.current_version() is None
    with pytest.raises(SinkReadFailed, match="does not exist or its newest version is disabled"):
        sink.read_back()


def test_a_secret_patwarden_did_not_write_has_no_authorization_id(
    make_sink: Any, sdk: SecretClient
) -> None:
    sink = make_sink()
    stored = sdk.set_secret(sink.spec.secret, "hand-made")
    assert sink.current_version() == SinkVersion(ref=stored.properties.version)


def test_mark_revoked_tags_every_version_of_that_pat(
    emulator: RunningEmulator, make_sink: Any
) -> None:
    sink = make_sink()
    meta = fake_meta()
    first = sink.write(fake_pat(), meta)
    second = sink.write(fake_pat(), meta)  # e.g. a resumed distribute step
    other = sink.write(fake_pat(), fake_meta())
    assert sink.mark_revoked(meta.authorization_id) == 2
    assert sink.mark_revoked(meta.authorization_id) == 0
    stored = {v["version"]: v["tags"] for v in versions(emulator, sink.spec.secret)}
    assert "revokedAt" in stored[first.ref]
    assert "revokedAt" in stored[second.ref]
    assert "revokedAt" not in stored[other.ref]
    assert stored[first.ref]["authorizationId"] == meta.authorization_id


def test_mark_revoked_on_a_missing_secret_is_zero(make_sink: Any) -> None:
    assert make_sink().mark_revoked("3f1c0d2e-1111-2222-3333-444455556666") == 0


def test_the_key_vault_sink_offers_revocation_tagging(make_sink: Any) -> None:
    assert isinstance(make_sink(), RevocationTagging)  # the engine tags through this port


def test_an_identity_without_a_vault_role_gets_the_role_hint(
    emulator: RunningEmulator, make_sink: Any
) -> None:
    client_id = emulator["identities"]["service_principal"]["client_id"]
    emulator.admin("DELETE", "/key-vault/grants", json={"principal": client_id})
    sink = make_sink()
    with pytest.raises(SinkUnavailable, match="identity 'writer' is not allowed") as caught:
        sink.write(fake_pat(), fake_meta())
    assert "Key Vault Secrets Officer" in str(caught.value)


def test_without_the_ca_bundle_tls_fails_with_a_hint(
    emulator: RunningEmulator, writer_context: SinkContext, make_sink: Any
) -> None:
    context = SinkContext(credential=writer_context.credential, ca_bundle=None)
    sink = make_sink(context)
    with pytest.raises(SinkUnavailable) as caught:
        sink.write(fake_pat(), fake_meta())
    assert "ca_bundle" in str(caught.value)


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ({"vault_url": "http://ops-kv.vault.azure.net"}, "sink.vault_url: Value error, must be"),
        ({"vault_url": "https://ops-kv.vault.azure.net/secrets/x"}, "without a path"),
        ({"secret": "flux_git"}, "sink.secret: String should match pattern"),
    ],
)
def test_invalid_entries_name_the_key(
    writer_context: SinkContext, keys: dict[str, Any], problem: str
) -> None:
    spec = {"kind": "key_vault", "vault_url": "https://kv.vault.azure.net", "secret": "s", **keys}
    with pytest.raises(SinkConfigError) as caught:
        KeyVaultSink.from_spec(spec, writer_context)
    assert problem in str(caught.value)


def test_sinks_of_one_vault_and_identity_share_one_client_that_the_pool_closes(
    emulator: RunningEmulator, writer_context: SinkContext
) -> None:
    from patwarden.http_answers import PerThreadTransport

    pool = ClientPool()
    context = dataclasses.replace(writer_context, clients=pool)
    vault = emulator["key_vault_url"]
    sinks = [
        KeyVaultSink.from_spec(
            {"kind": "key_vault", "vault_url": vault, "secret": f"s-{i}"}, context
        )
        for i in range(3)
    ]
    assert len(pool) == 1
    client = sinks[0].client
    assert all(sink.client is client for sink in sinks)
    transport = client._sender.transport_for(httpx.URL(vault))
    assert isinstance(transport, PerThreadTransport)  # each worker keeps its own connections
    for sink in sinks:
        sink.write(fake_pat(), fake_meta())
        sink.close()  # a shared client stays open for the other sinks
    assert sinks[0].read_back() is not None
    assert len(transport) == 1  # one thread used it
    pool.close()
    assert len(transport) == 0  # closed by its owner, the pool


def test_the_check_right_after_a_read_back_answers_from_it(
    emulator: RunningEmulator, make_sink: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from patwarden.sinks import key_vault

    def gets_since(seq: int) -> int:
        log = emulator.admin("GET", f"/requests?since={seq}").json()["requests"]
        return sum(1 for entry in log if entry["method"] == "GET")

    sink = make_sink()
    meta = fake_meta()
    written = sink.write(fake_pat(), meta)
    start = emulator.admin("GET", "/requests?since=0").json()["last_seq"]
    assert sink.read_back() is not None
    assert sink.current_version() == written  # what the read-back saw: no request
    assert gets_since(start) == 1
    assert sink.current_version() == written  # only once: asked again, the vault answers
    assert gets_since(start) == 2
    monkeypatch.setattr(key_vault, "SEEN_FOR", 0.0)
    sink.read_back()
    assert sink.current_version() == written  # too old to answer from
    assert gets_since(start) == 4
    monkeypatch.undo()
    sink.read_back()
    other = sink.write(fake_pat(), meta)  # a write forgets what was seen
    assert sink.current_version() == other
