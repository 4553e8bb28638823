"""Fixtures for sinks that talk to the emulator: a real service principal and real clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from patwarden.azdo.client import AzureDevOpsClient
from patwarden.azdo.transport import RetryPolicy, ServiceUrls
from patwarden.sinks.spec import SinkContext
from tests.conftest import RunningEmulator
from tests.support.plugins import plugin_root  # noqa: F401  # a fixture for the registry tests
from tests.support.tokens import sp_credential  # tests/reliability imports it from here


@pytest.fixture(scope="session")
def writer_context(emulator_session: RunningEmulator) -> Iterator[SinkContext]:
    """A SinkContext whose every identity is the emulator's service principal."""
    credential = sp_credential(emulator_session)
    client = AzureDevOpsClient(
        credential=credential,
        urls=ServiceUrls(
            azure_devops_url=emulator_session["azure_devops_url"],
            vssps_url=emulator_session["vssps_url"],
        ),
        ca_bundle=emulator_session.ca_bundle,
        retry=RetryPolicy(attempts=2, base_delay=0.05, max_delay=0.1),
    )
    try:
        yield SinkContext(
            credential=lambda name: credential,
            azure_devops=lambda name: client,
            organization=emulator_session["organization"],
            ca_bundle=emulator_session.ca_bundle,
        )
    finally:
        client.close()
        credential.close()
