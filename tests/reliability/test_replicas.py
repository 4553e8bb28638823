"""Three ``patwarden serve`` replicas on one PostgreSQL state: the leader SIGKILLed, then a leader
SIGSTOPped (tests/support/replicas.py; ``benchmarks/replica_failover.py`` kills twenty)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import RunningEmulator
from tests.reliability.figures import record
from tests.support.replicas import FAILOVER_S, STANDBY_RETRY_S, run_replicas
from tests.support.state_servers import PostgresServer

pytestmark = pytest.mark.slow


def test_leaders_killed_and_stopped_fail_over_without_double_rotations(
    emulator: RunningEmulator, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    figures = run_replicas(emulator, postgres_server.new_database(), tmp_path, kills=2)
    assert len(figures.failovers) == 2
    assert max(figures.failovers) < FAILOVER_S + STANDBY_RETRY_S + 2, figures.summary()
    assert figures.double_rotations == 0, figures.summary()
    assert figures.writes_after_fencing == 0, figures.summary()
    record(
        "replicas", kills=2, double_rotations=0, max_failover_ms=int(max(figures.failovers) * 1000)
    )
