"""Every connection of a requests session (MSAL's, azure-identity's) verifies with one SSL
context, loaded once per CA file.

Before, urllib3 parsed the CA file (certifi's, the system's and the configured bundle: ~300
certificates) into a new context for each connection and kept it for the connection's life: at 64
workers, 64 parses and most of a fleet run's memory. These tests run against the emulator over
HTTPS with real requests sessions.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests

from patwarden.tls import requests_verify
from patwarden.tls.requests_adapter import SharedContextAdapter, context_for
from tests.conftest import RunningEmulator

WORKERS = 6


def _session(verify: str | bool) -> tuple[requests.Session, SharedContextAdapter]:
    session = requests.Session()
    session.trust_env = False
    adapter = SharedContextAdapter(verify, pool_maxsize=WORKERS)
    session.mount("https://", adapter)
    return session, adapter


def _get_at_once(session: requests.Session, url: str, verify: str | bool) -> list[int]:
    """GET *url* from WORKERS threads at the same moment (so the pool opens several connections)."""
    barrier = threading.Barrier(WORKERS)
    statuses: list[int] = []

    def one() -> None:
        barrier.wait()
        statuses.append(session.get(url, verify=verify, timeout=30).status_code)

    threads = [threading.Thread(target=one) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def _connections(adapter: SharedContextAdapter) -> list[Any]:
    manager: Any = adapter.poolmanager
    pools = [manager.pools[key] for key in manager.pools.keys()]  # noqa: SIM118  # no __iter__
    return [
        conn for pool in pools if pool.pool for conn in list(pool.pool.queue) if conn and conn.sock
    ]


def test_connections_share_one_context_and_do_not_reload_the_ca_file(
    emulator: RunningEmulator,
) -> None:
    verify = requests_verify(emulator.ca_bundle)
    session, adapter = _session(verify)
    shared = context_for(verify)
    with session:
        statuses = _get_at_once(session, emulator["key_vault_url"], verify)
        connections = _connections(adapter)
        assert len(statuses) == WORKERS
        assert all(status < 500 for status in statuses)
        assert len(connections) > 1  # several connections were opened …
        assert all(conn.sock.context is shared for conn in connections)  # … on one context
        assert all(conn.ca_certs is None for conn in connections)  # no file to reload
    assert context_for(verify) is shared  # built once per process


def test_the_shared_context_still_refuses_an_untrusted_server(emulator: RunningEmulator) -> None:
    session, _ = _session(True)  # certifi's public CAs only: not the emulator's CA
    with session, pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        session.get(emulator["key_vault_url"], timeout=30)


def test_a_request_with_another_verify_gets_requests_usual_handling(
    emulator: RunningEmulator,
) -> None:
    session, adapter = _session(True)
    verify = requests_verify(emulator.ca_bundle)
    with session:
        answer = session.get(emulator["key_vault_url"], verify=verify, timeout=30)
        connections = _connections(adapter)
        assert answer.status_code < 500
        assert connections
        assert all(conn.ca_certs == verify for conn in connections)
        assert all(conn.sock.context is not adapter.ssl_context for conn in connections)
        # … and the shared context did not learn that bundle: it still refuses the emulator.
        with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
            session.get(emulator["key_vault_url"], timeout=30)


def test_verification_cannot_be_turned_off() -> None:
    with pytest.raises(ValueError, match="verify=False is refused"):
        SharedContextAdapter(False)
