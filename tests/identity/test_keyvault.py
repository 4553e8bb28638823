"""A vault never chooses the audience of the token it gets (issue 11, item 3).

The attack: a vault host outside Microsoft's domains (where the SDK cannot verify its challenge)
answers ``401`` naming the Azure DevOps resource; without the pinned scope the writer asked Entra
for an Azure DevOps token and sent it there, then the PAT. Here a fake vault over real HTTPS names
that resource, and the credential records what it was asked for.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from patwarden.config.schema import AzureConfig
from patwarden.domain.scopes import AZURE_DEVOPS_RESOURCE
from patwarden.identity.keyvault import (
    PUBLIC_VAULT_SCOPE,
    VaultScopedCredential,
    secret_client,
    vault_scope,
)
from patwarden.plugins.testing import fake_meta, fake_pat
from patwarden.sinks.key_vault import KeyVaultSink
from patwarden.sinks.spec import SinkContext
from tests.support.receivers import make_tls, serve_https

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


@dataclass
class FakeVault:
    """An HTTPS "vault" whose challenge names Azure DevOps; records the bearer tokens it gets."""

    url: str = ""
    ca_bundle: str = ""
    bearers: list[str] = field(default_factory=list)


@dataclass
class RecordingCredential:
    """Hands out a token naming the scope it was asked for, and remembers each scope."""

    asked: list[tuple[str, ...]] = field(default_factory=list)

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.asked.append(scopes)
        return AccessToken(f"token-for {' '.join(scopes)}", int(time.time()) + 3600)


@pytest.fixture
def fake_vault(tmp_path: Path) -> Iterator[FakeVault]:
    tls = make_tls(tmp_path)
    state = FakeVault(ca_bundle=str(tls.ca_bundle))

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            auth = self.headers.get("Authorization")
            if not auth:
                self.send_response(401)
                self.send_header(
                    "WWW-Authenticate",
                    f'Bearer authorization="https://login.microsoftonline.com/{TENANT}", '
                    f'resource="{AZURE_DEVOPS_RESOURCE}"',
                )
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            state.bearers.append(auth.removeprefix("Bearer "))
            name = self.path.split("?")[0].rstrip("/").split("/")[2]
            reply = json.dumps(
                {
                    "value": body.get("value", "x"),
                    "id": f"{state.url}/secrets/{name}/0123456789abcdef0123456789abcdef",
                    "attributes": {"enabled": True, "created": 1, "updated": 1},
                    "tags": body.get("tags", {}),
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_GET = do_PUT = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serve_https(tls, Handler) as url:
        state.url = url
        yield state


def test_a_fake_vault_naming_azure_devops_gets_only_a_vault_token(fake_vault: FakeVault) -> None:
    credential = RecordingCredential()
    azure = AzureConfig(ca_bundle=Path(fake_vault.ca_bundle))
    client = secret_client(vault_url=fake_vault.url, credential=credential, azure=azure)
    client.get_secret("patwarden-cache")
    assert credential.asked == [(PUBLIC_VAULT_SCOPE,)]
    assert fake_vault.bearers == [f"token-for {PUBLIC_VAULT_SCOPE}"]
    assert not any(AZURE_DEVOPS_RESOURCE in bearer for bearer in fake_vault.bearers)


def test_the_key_vault_sink_pins_the_audience_too(fake_vault: FakeVault) -> None:
    credential = RecordingCredential()
    context = SinkContext(credential=lambda name: credential, ca_bundle=fake_vault.ca_bundle)
    sink = KeyVaultSink.from_spec(
        {"kind": "key_vault", "vault_url": fake_vault.url, "secret": "flux", "identity": "writer"},
        context,
    )
    try:
        sink.write(fake_pat(), fake_meta())
    finally:
        sink.close()
    assert credential.asked
    assert set(credential.asked) == {(PUBLIC_VAULT_SCOPE,)}
    assert set(fake_vault.bearers) == {f"token-for {PUBLIC_VAULT_SCOPE}"}


USGOV_SCOPE = "https://vault.usgovcloudapi.net/.default"
CHINA_SCOPE = "https://vault.azure.cn/.default"


@pytest.mark.parametrize(
    ("entry", "scope"),
    [
        ("private_endpoint", USGOV_SCOPE),  # no audience named: the configured cloud's
        ({"kind": "private_endpoint"}, USGOV_SCOPE),
        ({"cloud": "china"}, CHINA_SCOPE),
        (
            {"scope": "https://vault.sovereign.example/.default"},
            "https://vault.sovereign.example/.default",
        ),
    ],
    ids=["plain", "mapping", "cloud", "scope"],
)
def test_a_private_endpoint_of_a_sovereign_cloud_gets_that_clouds_vault_token(
    fake_vault: FakeVault, entry: object, scope: str
) -> None:
    # The attack: a private-endpoint vault of US Gov on a custom host name used to get a token
    # for the public cloud's vault audience (useless there, and the wrong audience to hand out).
    credential = RecordingCredential()
    azure = AzureConfig.model_validate(
        {
            "authority_host": "https://login.microsoftonline.us",
            "ca_bundle": fake_vault.ca_bundle,
            "custom_vault_hosts": {"127.0.0.1": entry},
        }
    )
    client = secret_client(vault_url=fake_vault.url, credential=credential, azure=azure)
    client.get_secret("patwarden-cache")
    assert credential.asked == [(scope,)]
    assert fake_vault.bearers == [f"token-for {scope}"]
    assert PUBLIC_VAULT_SCOPE not in credential.asked[0]
    sink_credential = RecordingCredential()
    context = SinkContext(
        credential=lambda name: sink_credential,
        ca_bundle=fake_vault.ca_bundle,
        vault_scope=azure.vault_scope,
    )
    sink = KeyVaultSink.from_spec(
        {"kind": "key_vault", "vault_url": fake_vault.url, "secret": "flux", "identity": "writer"},
        context,
    )
    try:
        sink.write(fake_pat(), fake_meta())
    finally:
        sink.close()
    assert set(sink_credential.asked) == {(scope,)}


def test_a_microsoft_vault_host_keeps_its_own_clouds_scope_whatever_the_config() -> None:
    azure = AzureConfig.model_validate(
        {"authority_host": "https://login.microsoftonline.us", "custom_vault_hosts": {}}
    )
    assert azure.vault_scope("https://ops.vault.azure.cn") == CHINA_SCOPE
    assert azure.vault_scope("https://kv.internal.example") == USGOV_SCOPE
    assert AzureConfig().vault_scope("https://kv.internal.example") == PUBLIC_VAULT_SCOPE


@pytest.mark.parametrize(
    "entry",
    [
        {"scope": "https://vault.example/not-default"},
        {"cloud": "mars"},
        {"cloud": "china", "scope": CHINA_SCOPE},
    ],
)
def test_a_custom_vault_host_entry_with_a_bad_audience_is_refused(entry: object) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        AzureConfig.model_validate({"custom_vault_hosts": {"kv.internal.example": entry}})


@pytest.mark.parametrize(
    ("vault_url", "scope"),
    [
        ("https://ops.vault.azure.net", "https://vault.azure.net/.default"),
        ("https://ops.vault.azure.cn", "https://vault.azure.cn/.default"),
        ("https://ops.vault.usgovcloudapi.net", "https://vault.usgovcloudapi.net/.default"),
        ("https://kv.internal.example", PUBLIC_VAULT_SCOPE),  # private endpoint, emulator
        ("https://vault.azure.net.evil.example", PUBLIC_VAULT_SCOPE),
    ],
)
def test_vault_scope_follows_the_cloud_of_the_vault(vault_url: str, scope: str) -> None:
    assert vault_scope(vault_url) == scope


def test_the_wrapped_credential_ignores_the_scopes_it_is_asked_for() -> None:
    inner = RecordingCredential()
    pinned = VaultScopedCredential(inner, scope=PUBLIC_VAULT_SCOPE)
    pinned.get_token(f"{AZURE_DEVOPS_RESOURCE}/.default")
    info = pinned.get_token_info(f"{AZURE_DEVOPS_RESOURCE}/.default")
    assert inner.asked == [(PUBLIC_VAULT_SCOPE,), (PUBLIC_VAULT_SCOPE,)]
    assert info.token == f"token-for {PUBLIC_VAULT_SCOPE}"
    assert "token-for" not in repr(pinned)
