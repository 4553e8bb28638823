"""Four ``patwarden rotate`` processes started together on one config and one state (issue 6).

Six tokens are due (never rotated); their sinks share one Key Vault and one sink directory, and
each writes a variable group of its own. Four processes, each with its own pool of workers, start
at the same moment. Afterwards, checked through the emulator and the sinks: each token got
exactly one PAT (one create, seen in the emulator's PAT list and its request log) and one
``promoted`` audit record; exactly one process reports it ``rotated``, the others ``not_due`` or
``skipped``; every sink serves that PAT and it authenticates; no secret leaked. With emulated
latency the runs overlap for longer, which is the harder case for the per-token locks.

The last test puts every token's variable in ONE variable group, which is read, changed and
written back whole: tokens rotated at once (by the worker threads of one run, or by four runs)
lost each other's variable until the variable-group sink took a lock per group (found by this
suite; see docs/reliability-crash-and-soak.md).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import RunningEmulator
from tests.reliability.crash_support import Fleet, create_requests
from tests.reliability.figures import record
from tests.reliability.invariants import rotated_once_problems
from tests.reliability.leaks import LeakScanner

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("concurrent-rotate")]

TOKENS = tuple(f"due-{n}" for n in range(6))
PROCESSES = 4


@pytest.mark.parametrize("latency_ms", [0, 40], ids=["fast", "latency-40ms"])
def test_four_processes_rotate_each_due_token_exactly_once(
    latency_ms: int, emulator: RunningEmulator, tmp_path: Path, leak_scan: LeakScanner
) -> None:
    fleet = Fleet(
        emulator, tmp_path, leak_scan, tokens=TOKENS, revoke_after="1d", shared_group=False
    )
    try:
        if latency_ms:
            rule = {"route": ".", "kind": "latency", "latency_ms": latency_ms}
            emulator.admin("POST", "/faults", json=rule)
        emulator.admin("DELETE", "/requests")
        started = time.monotonic()
        processes = [fleet.start("rotate", "-o", "json") for _ in range(PROCESSES)]
        runs = [fleet.finish(process) for process in processes]
        seconds = time.monotonic() - started
        fleet.clear_faults()

        assert rotated_once_problems(runs, TOKENS) == []

        creates = create_requests(emulator)
        assert len(creates) == len(TOKENS)
        assert all(entry["status"] == 200 for entry in creates)
        promoted = Counter(r["token"] for r in fleet.audit() if r["kind"] == "promoted")
        assert promoted == dict.fromkeys(TOKENS, 1)
        for token in TOKENS:
            (pat,) = fleet.marked(token)  # exactly one PAT was ever created for it
            assert not pat["revoked"]
            assert fleet.settled_problems(token) == []
        record(
            "concurrency",
            test=f"{PROCESSES} processes, {len(TOKENS)} tokens, latency {latency_ms} ms",
            processes=PROCESSES,
            tokens=len(TOKENS),
            creates=len(creates),
            skipped=sum(o == "skipped" for run in runs for o in run.outcomes().values()),
            milliseconds=round(seconds * 1000),
        )
    finally:
        fleet.clear_faults()
        fleet.close()


@pytest.mark.parametrize("processes", [1, PROCESSES], ids=["one-process", "four-processes"])
def test_tokens_sharing_a_variable_group_keep_every_variable(
    processes: int, emulator: RunningEmulator, tmp_path: Path, leak_scan: LeakScanner
) -> None:
    fleet = Fleet(emulator, tmp_path, leak_scan, tokens=TOKENS, revoke_after="1d")
    try:
        emulator.admin("POST", "/faults", json={"route": ".", "kind": "latency", "latency_ms": 40})
        runs = [
            fleet.finish(p) for p in [fleet.start("rotate", "-o", "json") for _ in range(processes)]
        ]
        fleet.clear_faults()
        assert all(run.code == 0 for run in runs)
        problems = [problem for token in TOKENS for problem in fleet.settled_problems(token)]
        assert problems == []
    finally:
        fleet.clear_faults()
        fleet.close()
