"""The crash matrix (a subset) and the concurrency suite on the shared state backends.

The same cases as ``test_crash_matrix.py`` and ``test_concurrent_rotate.py`` (which run on the
default SQLite state), with the state in PostgreSQL (Debian's server) or in one Azure Blob
(Azurite, written as the config's ``writer`` service principal with an Entra token from the
emulator). The state itself is scanned for secrets too.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from patwarden.app.context import AppContext
from patwarden.config.model import load_config
from tests.conftest import RunningEmulator
from tests.reliability.crash_support import Fleet, create_requests
from tests.reliability.figures import record
from tests.reliability.invariants import rotated_once_problems
from tests.reliability.leaks import LeakScanner
from tests.reliability.test_crash_matrix import POINTS, crash_and_recover
from tests.state.test_azblob import trust_both
from tests.support import clock
from tests.support.state_servers import AzuriteServer, PostgresServer

pytestmark = pytest.mark.slow

BACKENDS = ("postgresql", "azblob")
SUBSET = ("kv-write-acted-client-died", "revoke-answer-lost")  # a sink written, the revoke lost
# Every Blob case waits out the killed run's lease (15 s): one case there keeps the suite short.
CASES = [
    *(("postgresql", name) for name in SUBSET),
    ("azblob", "kv-write-acted-client-died"),
]
TOKENS = tuple(f"due-{n}" for n in range(4))
PROCESSES = 3


def fleet_state(
    backend: str, request: pytest.FixtureRequest, emulator: RunningEmulator, tmp_path: Path
) -> dict[str, Any]:
    """Fleet settings putting its state on *backend* (a new database or container)."""
    if backend == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        return {"state": {"backend": "postgresql", "url": server.new_database()}}
    azurite: AzuriteServer = request.getfixturevalue("azurite_server")
    state = {
        "backend": "azblob",
        "account_url": azurite.account_url,
        "container": azurite.new_container(),
        "identity": "writer",  # the example config's service principal: Entra, no key
        "lease_duration": 15,  # a killed run's lease lapses after this (Azure's minimum)
    }
    return {"state": state, "ca_bundle": trust_both(emulator, azurite, tmp_path)}


def scan_state(fleet: Fleet) -> str:
    """Hand the whole state to the leak scanner; return where it lives."""
    with AppContext(config=load_config(str(fleet.config)), clock=clock.TestClock()) as app:
        dump = app.state_backend().export_dump()
        fleet.scanner.capture("the state", json.dumps(asdict(dump), default=str))
        return app.state_where


@pytest.mark.parametrize(("backend", "name"), CASES)
def test_rotate_killed_at_this_point_recovers_on_a_shared_state(
    backend: str,
    name: str,
    emulator: RunningEmulator,
    tmp_path: Path,
    leak_scan: LeakScanner,
    request: pytest.FixtureRequest,
) -> None:
    (point,) = [p for p in POINTS if p.name == name]
    settings = fleet_state(backend, request, emulator, tmp_path)
    fleet = Fleet(emulator, tmp_path, leak_scan, tokens=("crash",), **settings)
    try:
        crash_and_recover(fleet, point)
        where = scan_state(fleet)
        assert where.startswith("postgresql://" if backend == "postgresql" else "https://")
    finally:
        fleet.clear_faults()
        fleet.close()
    record("crash_matrix_shared_state", backend=backend, point=name, survived=1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_processes_rotate_each_due_token_exactly_once(
    backend: str,
    emulator: RunningEmulator,
    tmp_path: Path,
    leak_scan: LeakScanner,
    request: pytest.FixtureRequest,
) -> None:
    settings = fleet_state(backend, request, emulator, tmp_path)
    fleet = Fleet(
        emulator,
        tmp_path,
        leak_scan,
        tokens=TOKENS,
        revoke_after="1d",
        shared_group=False,
        **settings,
    )
    try:
        emulator.admin("DELETE", "/requests")
        processes = [fleet.start("rotate", "-o", "json") for _ in range(PROCESSES)]
        runs = [fleet.finish(process) for process in processes]
        assert rotated_once_problems(runs, TOKENS) == []
        creates = create_requests(emulator)
        assert len(creates) == len(TOKENS)
        promoted = Counter(r["token"] for r in fleet.audit() if r["kind"] == "promoted")
        assert promoted == dict.fromkeys(TOKENS, 1)
        for token in TOKENS:
            (pat,) = fleet.marked(token)
            assert not pat["revoked"]
            assert fleet.settled_problems(token) == []
        scan_state(fleet)
    finally:
        fleet.close()
    record("concurrent_rotate_shared_state", backend=backend, tokens=len(TOKENS), double=0)
