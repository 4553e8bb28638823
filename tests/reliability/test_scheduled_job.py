"""A scheduled job on ephemeral agents: every ``rotate`` runs in a fresh directory (no local state).

What a pipeline (Azure Pipelines, GitHub Actions, a Kubernetes CronJob) does: each run starts on
a clean agent with only the config. The rotator's token cache lives in Key Vault and the state in
one Azure Blob (Azurite, written as the ``writer`` service principal with an Entra token from the
emulator), so nothing is lost between runs. Five consecutive runs keep every token in its desired
state (one active patwarden PAT, served by every sink and working); then two runs on two agents
overlap on newly due tokens and no token is rotated twice.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningEmulator
from tests.reliability.crash_support import Fleet, create_requests
from tests.reliability.figures import record
from tests.reliability.invariants import rotated_once_problems
from tests.reliability.leaks import LeakScanner
from tests.reliability.test_state_backends import fleet_state, scan_state
from tests.support.configs import save_config

pytestmark = pytest.mark.slow

TOKENS = ("nightly-a", "nightly-b")
LATE = ("late-c", "late-d")  # added to the config before the overlapping runs: due at once


@dataclass
class Agents(Fleet):
    """A :class:`Fleet` whose every run gets a fresh agent directory as its ``state_dir``."""

    agent: int = field(init=False, default=0)

    def config_data(self) -> dict[str, Any]:
        data = super().config_data()
        rotator = data["identities"]["rotator"]
        rotator["cache"] = {
            **rotator["cache"],
            "kind": "key_vault",
            "vault_url": self.emulator["key_vault_url"],
            "secret": "rotator-token-cache",
            "identity": "writer",
        }
        data["state_dir"] = str(self.agent_dir)
        return data

    @property
    def agent_dir(self) -> Path:
        return self.root / "agents" / f"agent-{self.agent}"

    def fresh_agent(self) -> Path:
        """Point the config at a new, empty agent directory (as a new pipeline run gets)."""
        self.agent += 1
        save_config(self.config, self.config_data(), sort_keys=False)
        assert not self.agent_dir.exists()
        return self.agent_dir


def test_five_runs_on_fresh_agents_then_two_overlapping_runs(
    emulator: RunningEmulator,
    tmp_path: Path,
    leak_scan: LeakScanner,
    request: pytest.FixtureRequest,
) -> None:
    settings = fleet_state("azblob", request, emulator, tmp_path)
    agents = Agents(emulator, tmp_path, leak_scan, tokens=TOKENS, revoke_after="0s", **settings)
    try:
        expected = ["rotated", "not_due", "rotated", "not_due", "not_due"]  # run 3: --force
        for number, outcome in enumerate(expected, start=1):
            directory = agents.fresh_agent()
            run = agents.rotate(*(("--force",) if number == 3 else ()))
            assert run.code == 0, (number, run.stdout[-2000:], run.stderr[-2000:])
            assert run.outcomes() == dict.fromkeys(TOKENS, outcome), number
            assert not (directory / "state.db").exists()  # the state is in the blob only
            for token in TOKENS:
                assert agents.settled_problems(token) == [], (number, token)
        audit = agents.audit()
        promoted = Counter(r["token"] for r in audit if r["kind"] == "promoted")
        assert promoted == dict.fromkeys(TOKENS, 2)

        # Two agents at once on newly due tokens (with latency, so the runs overlap).
        agents.tokens = (*TOKENS, *LATE)
        emulator.admin("DELETE", "/requests")
        emulator.admin("POST", "/faults", json={"route": ".", "kind": "latency", "latency_ms": 30})
        agents.fresh_agent()
        first = agents.start("rotate", "-o", "json")
        agents.fresh_agent()
        second = agents.start("rotate", "-o", "json")
        runs = [agents.finish(first), agents.finish(second)]
        agents.clear_faults()
        assert rotated_once_problems(runs, LATE) == []
        creates = create_requests(emulator)
        assert len(creates) == len(LATE)
        for token in (*TOKENS, *LATE):
            assert agents.settled_problems(token) == [], token
        scan_state(agents)
    finally:
        agents.clear_faults()
        agents.close()
    record("scheduled_job", runs=5, overlapping=2, double_rotations=0)
