"""The MSAL session: the configured CA bundle wins over REQUESTS_CA_BUNDLE; never verify=False."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import trustme

from patwarden.identity.http import msal_session
from tests.conftest import RunningEmulator


def test_verification_cannot_be_switched_off() -> None:
    with pytest.raises(ValueError, match="cannot be switched off"):
        msal_session(verify=False)


@pytest.mark.slow
def test_configured_ca_bundle_beats_requests_ca_bundle(
    emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unrelated = tmp_path / "unrelated-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(unrelated))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(unrelated))
    tenant = f"{emulator['authority_host']}/{emulator['tenant_id']}"
    discovery = f"{tenant}/v2.0/.well-known/openid-configuration"
    with msal_session(verify=emulator.ca_bundle) as pinned:
        assert pinned.get(discovery).status_code == 200
    # With the system default (True) the environment variable is honoured, as requests does.
    import requests

    with msal_session(verify=True) as default, pytest.raises(requests.exceptions.SSLError):
        default.get(discovery)


def test_msal_debug_log_of_a_token_event_masks_the_device_code(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Found by tests/reliability: `patwarden --debug login` printed the redeemed device code.
    import msal

    code = "DAQABIQEAAAD" + "x" * 60
    cache = msal.TokenCache()
    with caplog.at_level(logging.DEBUG, logger="msal.token_cache"):
        cache.add(
            {
                "client_id": "c",
                "scope": ["s"],
                "token_endpoint": "https://login.example/t/oauth2/v2.0/token",
                "data": {"device_code": code, "code": code},
                "response": {},
            }
        )
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert '"device_code": "********"' in logged
    assert code not in logged


def test_connections_verify_with_the_shared_context(emulator: RunningEmulator) -> None:
    """MSAL's connections use the process's one context for the bundle (urllib3 parsed the CA
    file into a new context for each connection before)."""
    from patwarden.tls.requests_adapter import SharedContextAdapter, context_for

    tenant = f"{emulator['authority_host']}/{emulator['tenant_id']}"
    with msal_session(verify=emulator.ca_bundle) as session:
        assert session.get(f"{tenant}/v2.0/.well-known/openid-configuration").status_code == 200
        adapter = session.get_adapter(tenant)
        assert isinstance(adapter, SharedContextAdapter)
        manager: Any = adapter.poolmanager
        pools = [manager.pools[key] for key in manager.pools.keys()]  # noqa: SIM118  # no __iter__
        sockets = [conn.sock for pool in pools for conn in list(pool.pool.queue) if conn]
        assert [sock.context for sock in sockets if sock] == [context_for(emulator.ca_bundle)]
