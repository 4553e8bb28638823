"""The fault soak of issue 6, small: 30 forced rotations with seeded faults on every route.

Five tokens (Key Vault secret, a variable group each, file) are force-rotated round after round in
process through ``patwarden.app.runtime.Runtime`` (real emulator, real httpx, real sinks, 4 workers)
while 10 % of the requests on every route — Entra, Azure DevOps, Key Vault — meet a seeded fault:
HTTP 503, 429 with ``Retry-After``, a connection silent for 1.5 s then dropped, or a reset
(:func:`~tests.reliability.crash_support.fault_rules`). Between rounds the faults are lifted and
every sink must serve a PAT that authenticates; at the end, after a clean reconcile past the
orphan margin, each token has exactly one active patwarden PAT, served by all its sinks. Retries
stay bounded (no request is sent more than 4 times in a row), nothing leaks (``leak_scan``
reads every log record at every level and every file but the sinks).

The ≥ 300-rotation run is ``benchmarks/fault_soak.py``; its figures are in
``docs/reliability-crash-and-soak.md``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import RunningEmulator
from tests.reliability.crash_support import FAULT_KINDS, Fleet, soak
from tests.reliability.figures import record
from tests.reliability.leaks import LeakScanner

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("fault-soak")]

ROTATIONS = 30
MAX_TRIES = 4  # the first try and at most 3 retries (Azure DevOps client and azure-core alike)


def test_rotations_under_seeded_faults_on_every_route_keep_the_invariants(
    emulator: RunningEmulator, tmp_path: Path, leak_scan: LeakScanner
) -> None:
    tokens = tuple(f"soak-{n}" for n in range(5))
    fleet = Fleet(emulator, tmp_path, leak_scan, tokens=tokens, shared_group=False)
    try:
        figures = soak(fleet, rotations=ROTATIONS, seed=6)
    finally:
        fleet.clear_faults()
        fleet.close()
    record("fault_soak", test="in-suite soak", **figures.as_counts())

    assert figures.problems == []
    assert figures.rotations >= ROTATIONS
    assert set(figures.faults) == set(FAULT_KINDS), figures.faults  # every kind was injected
    assert 0.05 * figures.requests <= figures.injected <= 0.16 * figures.requests
    assert 1 < figures.max_attempts <= MAX_TRIES
    assert figures.retried_requests > 0
    assert set(figures.outcomes) <= {"rotated", "failed", "rolled_back"}
    # Faults at 10 % cost some rotations (a request that failed 4 times), never most of them.
    assert figures.outcomes.get("rotated", 0) >= 0.7 * figures.rotations, figures.failures
    assert figures.requests <= 40 * figures.rotations
