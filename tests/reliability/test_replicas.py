"""Three ``patwarden serve`` replicas on one PostgreSQL state: the leader SIGKILLed, then a leader
SIGSTOPped (tests/support/replicas.py; ``benchmarks/replica_failover.py`` kills twenty)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import RunningEmulator
from tests.reliability.figures import record
from tests.support.replicas import FAILOVER_S, run_replicas
from tests.support.state_servers import PostgresServer

pytestmark = pytest.mark.slow


def test_leaders_killed_and_stopped_fail_over_without_double_rotations(
    emulator: RunningEmulator, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    figures = run_replicas(emulator, postgres_server.new_database(), tmp_path, kills=2)
    assert figures.kinds == ["SIGKILL", "SIGSTOP"]
    # within the configured `failover` (3 s here), whether the leader died or hangs
    assert 0 < figures.worst("SIGKILL") < FAILOVER_S, figures.summary()
    assert 0 < figures.worst("SIGSTOP") < FAILOVER_S, figures.summary()
    assert figures.double_rotations == 0, figures.summary()
    assert figures.writes_after_fencing == 0, figures.summary()
    record(
        "replicas",
        kills=2,
        double_rotations=0,
        failover_limit_ms=FAILOVER_S * 1000,
        max_sigkill_failover_ms=int(figures.worst("SIGKILL") * 1000),
        max_sigstop_failover_ms=int(figures.worst("SIGSTOP") * 1000),
    )
