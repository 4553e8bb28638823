"""Hostile server answers: every call ends in a clean patwarden error, quickly, and loses nothing.

The real Azure DevOps client and the real variable group and Key Vault sinks talk to a hostile
proxy in front of the emulator (:mod:`tests.reliability.hostile`) that truncates, corrupts,
retypes, inflates, drips or withholds the answer of one route. Each call must return or raise a
:class:`~patwarden.errors.PatwardenError` (never a ``TypeError``, ``KeyError`` or an httpx
exception), within a bounded time, without reading an endless body into memory, and without a
secret in the message or the logs. A PAT create whose answer was mangled after the service acted
must say so (``CreateOutcomeUnknown``), so the engine looks the PAT up instead of orphaning it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken

from patwarden.azdo.client import AzureDevOpsClient
from patwarden.azdo.errors import CreateOutcomeUnknown
from patwarden.azdo.transport import RetryPolicy, ServiceUrls
from patwarden.errors import PatwardenError
from patwarden.rotation.ports import SinkWriteMeta
from patwarden.secret import Secret
from patwarden.sinks.key_vault import KeyVaultSink
from patwarden.sinks.spec import SinkContext
from patwarden.sinks.variable_group import VariableGroupSink
from tests.conftest import RunningEmulator
from tests.emulator.devops_support import Ado, make_ado
from tests.reliability.figures import record
from tests.reliability.hostile import HUGE_LIMIT, MANGLES, HostileProxy, hostile_proxy
from tests.reliability.leaks import LeakScanner
from tests.sinks.conftest import sp_credential

TIMEOUT = httpx.Timeout(1.0, connect=1.0)
RETRY = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)
CALL_BUDGET = 30.0  # seconds one call may take against the worst server, retries included
BODY_CAP = 24 << 20  # sent before the client hung up: 4 MiB read plus socket buffers


class _StaticCredential:
    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3600)


class World:
    """Clients of the rotator and the writer that reach Azure DevOps and Key Vault via the proxy."""

    def __init__(self, emulator: RunningEmulator, proxy: HostileProxy, bundle: Path) -> None:
        self.emulator, self.proxy, self.bundle = emulator, proxy, bundle
        self.org = str(emulator["organization"])
        self._http = emulator.http()
        self.ado: Ado = make_ado(emulator, self._http)
        urls = ServiceUrls(azure_devops_url=f"{proxy.url}/devops", vssps_url=f"{proxy.url}/vssps")
        common: dict[str, Any] = {
            "urls": urls,
            "ca_bundle": str(bundle),
            "retry": RETRY,
            "timeout": TIMEOUT,
        }
        self.rotator = AzureDevOpsClient(
            credential=_StaticCredential(self.ado.user_token()), **common
        )
        self.sp = sp_credential(emulator)
        self.writer = AzureDevOpsClient(credential=self.sp, **common)
        self.context = SinkContext(
            credential=lambda name: self.sp,
            azure_devops=lambda name: self.writer,
            organization=self.org,
            ca_bundle=str(bundle),
        )
        body = {"project": "infra", "name": "hostile", "variables": {"OTHER": {"value": "1"}}}
        self.group = int(emulator.admin("POST", "/variable-groups", json=body).json()["id"])
        self.created = 0
        self.existing_id, self.existing = "", Secret("")

    def fresh(self) -> None:
        """Relay everything again, forget what was seen, and make a new PAT to get and revoke."""
        self.proxy.clear()
        self.proxy.seen.clear()
        valid_to = (datetime.now(UTC) + timedelta(days=2)).isoformat()
        made = self.ado.create_pat(displayName="existing", scope="vso.code", validTo=valid_to)
        self.existing_id = str(made["authorizationId"])
        self.existing = Secret(str(made["token"]))

    def create_name(self) -> str:
        """A display name no earlier test used (so an earlier orphan does not count)."""
        self.created += 1
        return f"hostile-create-{self.created}"

    def close(self) -> None:
        self.rotator.close()
        self.writer.close()
        self.sp.close()
        self._http.close()

    def created_exists(self) -> bool:
        """Whether the PAT of the last create exists (active) at the emulator."""
        user = self.emulator["identities"]["rotator"]["username"]
        pats = self.emulator.admin("GET", f"/pats?username={user}").json()["value"]
        name = f"hostile-create-{self.created}"
        return any(p["displayName"] == name and not p["revoked"] for p in pats)


@pytest.fixture(scope="module")
def shared_world(
    emulator_session: RunningEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """One proxy and one set of clients for the module (building them costs a sign-in)."""
    emulator_session.reset()
    directory = tmp_path_factory.mktemp("hostile")
    with hostile_proxy(emulator_session, directory) as proxy:
        built = World(emulator_session, proxy, directory / "ca-bundle.pem")
        try:
            yield built
        finally:
            built.close()


@pytest.fixture
def world(shared_world: World, leak_scan: LeakScanner) -> World:
    leak_scan.emulator = shared_world.emulator
    sp = shared_world.emulator["identities"]["service_principal"]
    leak_scan.remember("client secret", sp["client_secret"])
    shared_world.fresh()
    return shared_world


def _meta() -> SinkWriteMeta:
    return SinkWriteMeta(
        token_name="hostile",
        authorization_id="6a1c4d9e-0000-4000-8000-000000000001",
        operation_id="b" * 32,
        valid_to=datetime.now(UTC) + timedelta(days=2),
    )


def _variable_group(world: World) -> VariableGroupSink:
    spec = {"kind": "variable_group", "project": "infra", "group": world.group, "variable": "PAT"}
    return VariableGroupSink.from_spec(spec, world.context)


def _key_vault(world: World) -> KeyVaultSink:
    spec = {"kind": "key_vault", "vault_url": world.proxy.url, "secret": "hostile-kv"}
    return KeyVaultSink.from_spec(spec, world.context)


Operation = Callable[[World], object]
OPERATIONS: dict[str, tuple[str, Operation]] = {
    "list-pats": (
        r"^GET /vssps/[^/]+/_apis/tokens/pats$",
        lambda w: list(w.rotator.pats.list_tokens(org=w.org)),
    ),
    "create-pat": (
        r"^POST /vssps/[^/]+/_apis/tokens/pats$",
        lambda w: w.rotator.pats.create(
            org=w.org,
            display_name=w.create_name(),
            scopes=["vso.code"],
            valid_to=datetime.now(UTC) + timedelta(days=1),
        ),
    ),
    "get-pat": (
        r"^GET /vssps/[^/]+/_apis/tokens/pats$",
        lambda w: w.rotator.pats.get(org=w.org, authorization_id=w.existing_id),
    ),
    "revoke-pat": (
        r"^DELETE /vssps/",
        lambda w: w.rotator.pats.revoke(org=w.org, authorization_id=w.existing_id),
    ),
    "verify-pat": (
        r"^GET /devops/[^/]+/_apis/connectionData",
        lambda w: w.rotator.verify_pat(org=w.org, pat=w.existing, scopes=["vso.code"]),
    ),
    "variable-group-write": (
        r"/distributedtask/variablegroups",
        lambda w: _variable_group(w).write(Secret("v" * 52), _meta()),
    ),
    "variable-group-version": (
        r"^GET .*/distributedtask/variablegroups",
        lambda w: _variable_group(w).current_version(),
    ),
    "key-vault-write": (
        r"^PUT /secrets/",
        lambda w: _key_vault(w).write(Secret("k" * 52), _meta()),
    ),
    "key-vault-read": (
        r"^GET /secrets/",
        lambda w: _key_vault(w).read_back(),
    ),
}


# Slow answers cost seconds each: the every-route sweep runs them on one route per client.
SLOW = ("drip", "silence")
CASES = [
    (operation, mangle)
    for operation in sorted(OPERATIONS)
    for mangle in MANGLES
    if mangle not in SLOW or operation in ("list-pats", "create-pat", "key-vault-write")
]
# A 204 has no body by definition (RFC 9110 §15.3.5): a revoke's answer cannot be truncated.
NO_BODY = {"revoke-pat"}


@pytest.fixture
def quick_key_vault(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short limits, so an endless or dripping answer costs a test seconds, not minutes."""
    from patwarden.azdo import transport
    from patwarden.sinks import key_vault_client

    monkeypatch.setattr(key_vault_client, "READ_TIMEOUT", 0.25)
    monkeypatch.setattr(key_vault_client, "MAX_ANSWER_BYTES", 4 << 20)
    monkeypatch.setattr(transport, "MAX_RESPONSE_BYTES", 4 << 20)


@pytest.mark.xdist_group("hostile")
@pytest.mark.parametrize(("operation", "mangle"), CASES)
def test_a_hostile_answer_is_a_clean_bounded_error(
    world: World, leak_scan: LeakScanner, quick_key_vault: None, operation: str, mangle: str
) -> None:
    route, call = OPERATIONS[operation]
    if operation == "key-vault-read":
        _key_vault(world).write(Secret("r" * 52), _meta())  # something to read back
    world.proxy.add(route, mangle)
    started = time.monotonic()

    try:
        result = call(world)
        failure: PatwardenError | None = None
    except PatwardenError as err:
        result, failure = None, err
        leak_scan.capture(f"{operation}/{mangle} error", str(err))
    rejected = failure is not None or getattr(result, "valid", True) is False

    elapsed = time.monotonic() - started
    assert elapsed < CALL_BUDGET, f"{operation} took {elapsed:.1f}s against {mangle}"
    mangled = [seen for seen in world.proxy.seen if seen.mangle == mangle]
    assert mangled, f"the {operation} request never reached the mangled route"
    if mangle == "huge":
        sent = max(seen.sent_bytes for seen in mangled)
        assert sent < BODY_CAP, f"the client read {sent >> 20} MiB of an endless body"
    if mangle in ("drip", "silence", "truncate", "garbage", "huge") and operation not in NO_BODY:
        assert rejected, f"{operation} accepted a {mangle} answer"
    created = operation == "create-pat" and world.created_exists()
    if created and failure is not None and mangle != "html":  # HTML: a sign-in page, not a PAT
        assert isinstance(failure, CreateOutcomeUnknown), (
            f"the PAT was created but a {mangle} answer was reported as {type(failure).__name__}"
            f" ({failure.message}); the engine would not look it up"
        )
    record("bad_input", kind=f"response-{mangle}", operation=operation, tried=1)


def test_the_proxy_relays_faithfully_when_no_rule_applies(
    world: World, leak_scan: LeakScanner
) -> None:
    tokens = world.rotator.pats.list_tokens(org=world.org)
    assert world.existing_id in [t.authorization_id for t in tokens]
    assert world.proxy.seen[-1].mangle is None
    assert HUGE_LIMIT > BODY_CAP
