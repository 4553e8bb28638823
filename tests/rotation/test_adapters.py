"""The Azure DevOps issuer adapter, and the engine end to end against the real emulator.

The rotator's Entra token comes from the emulator's device-code flow (approved through its admin
API, as a person would); sinks are in-memory fakes. Everything else is the real client over HTTPS.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from patwarden.azdo.client import AzureDevOpsClient
from patwarden.azdo.transport import ServiceUrls
from patwarden.domain.marker import format_marker
from patwarden.errors import PatwardenError
from patwarden.rotation.adapters import AzdoPatIssuer, PatRejected, SystemClock
from patwarden.rotation.engine import RotationEngine
from patwarden.rotation.outcomes import OutcomeKind
from patwarden.secret import Secret
from patwarden.state.sqlite import SqliteStateStore
from tests.conftest import RunningEmulator
from tests.emulator.devops_support import Ado
from tests.rotation.fakes import FakeClock, FakeSink, spec


class _StaticCredential:
    """A TokenCredential that hands out one pre-fetched user token."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int((datetime.now(UTC) + timedelta(hours=1)).timestamp()))


@pytest.fixture
def client(emulator: RunningEmulator, ado: Ado) -> Iterator[AzureDevOpsClient]:
    client = AzureDevOpsClient(
        credential=_StaticCredential(ado.user_token()),
        urls=ServiceUrls(
            azure_devops_url=emulator["azure_devops_url"], vssps_url=emulator["vssps_url"]
        ),
        ca_bundle=emulator.ca_bundle,
    )
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def issuer(client: AzureDevOpsClient) -> AzdoPatIssuer:
    return AzdoPatIssuer(client=client)


def test_issuer_round_trip(issuer: AzdoPatIssuer, ado: Ado) -> None:
    name = format_marker(token_name="flux-git", operation_id="a" * 32)
    created = issuer.create(
        organization=ado.org,
        display_name=name,
        scopes=["vso.code"],
        valid_to=datetime.now(UTC) + timedelta(days=10),
    )
    pat_id = created.pat.authorization_id
    ado.create_pat(displayName="someone's own PAT", scope="vso.code")

    assert [p.authorization_id for p in issuer.list_marked(organization=ado.org)] == [pat_id]
    fetched = issuer.get(organization=ado.org, authorization_id=pat_id)
    assert fetched is not None
    assert fetched.display_name == name
    issuer.verify(organization=ado.org, secret=created.secret, scopes=["vso.code"])

    issuer.revoke(organization=ado.org, authorization_id=pat_id)
    issuer.revoke(organization=ado.org, authorization_id=pat_id)  # already gone: still fine
    assert issuer.list_marked(organization=ado.org) == []
    with pytest.raises(PatRejected, match="not accepted"):
        issuer.verify(organization=ado.org, secret=created.secret, scopes=["vso.code"])


def test_verify_rejects_a_made_up_pat(issuer: AzdoPatIssuer, ado: Ado) -> None:
    with pytest.raises(PatRejected):
        issuer.verify(organization=ado.org, secret=Secret("x" * 52), scopes=["vso.code"])


def test_engine_rotates_against_the_emulator(
    issuer: AzdoPatIssuer, ado: Ado, tmp_path: Path
) -> None:
    sinks = [FakeSink("kv"), FakeSink("file", readable=False)]
    clock = SystemClock()
    store = SqliteStateStore(path=tmp_path / "state.db", now=clock.now)
    token = spec(revoke_after=timedelta(0))
    engine = RotationEngine(issuer=issuer, store=store, clock=clock, sinks=lambda _: sinks)

    first = engine.run([token])
    assert first.outcomes[0].kind is OutcomeKind.ROTATED, first.outcomes[0]
    first_id = first.outcomes[0].new_authorization_id
    forced = engine.run([token], force={token.name})

    assert forced.outcomes[0].kind is OutcomeKind.ROTATED, forced.outcomes[0]
    second_id = forced.outcomes[0].new_authorization_id
    marked = {p.authorization_id for p in issuer.list_marked(organization=ado.org)}
    assert marked == {second_id}, "the previous PAT is revoked once revoke_after (0s) passed"
    assert first_id != second_id
    assert sinks[0].value is not None
    issuer.verify(organization=ado.org, secret=Secret(sinks[0].value), scopes=["vso.code"])
    store.close()


def test_full_access_is_requested_only_for_tokens_configured_for_it(
    client: AzureDevOpsClient, issuer: AzdoPatIssuer, ado: Ado
) -> None:
    opted = AzdoPatIssuer(client=client, full_access_tokens=frozenset({"admin"}))
    valid_to = datetime.now(UTC) + timedelta(days=10)

    def create(through: AzdoPatIssuer, token: str) -> None:
        through.create(
            organization=ado.org,
            display_name=format_marker(token_name=token, operation_id="b" * 32),
            scopes=["app_token"],
            valid_to=valid_to,
        )

    with pytest.raises(PatwardenError, match="without allow_full_access"):
        create(opted, "flux-git")  # not configured for full access
    with pytest.raises(PatwardenError, match="without allow_full_access"):
        create(issuer, "admin")  # configured, but not through this issuer
    create(opted, "admin")
    assert [p.display_name for p in issuer.list_marked(organization=ado.org)] == [
        format_marker(token_name="admin", operation_id="b" * 32)
    ]


def test_a_pats_valid_from_is_azure_devops_own(client: AzureDevOpsClient, ado: Ado) -> None:
    pinned = AzdoPatIssuer(client=client, clock=FakeClock(datetime(2000, 1, 1, tzinfo=UTC)))
    created = pinned.create(
        organization=ado.org,
        display_name=format_marker(token_name="flux-git", operation_id="c" * 32),
        scopes=["vso.code"],
        valid_to=datetime.now(UTC) + timedelta(days=10),
    )
    [listed] = pinned.list_marked(organization=ado.org)
    assert listed.valid_from == created.pat.valid_from
    assert listed.valid_from.year > 2000, "the PAT's own validFrom, not the issuer's clock"
