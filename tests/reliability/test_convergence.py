"""Model-based: whatever happens to a token, the next clean `rotate` drives it to its desired state.

A Hypothesis state machine interleaves what the world does to a managed token — its current or
previous PAT revoked outside patwarden, a sink overwritten, disabled or deleted, the variable
group edited by hand, a run killed at a port call or while the emulator holds one of its
requests, faults, the clock jumping past the grace period, to the due date or past expiry, two
runs at once — and after every step one clean run of the real engine (``Runtime.rotate``, the
sinks and the Azure DevOps issuer against the emulator) must end with the desired state: every
sink serves one PAT that authenticates, it is the current one and active, the only other active
marked PATs are previous ones inside their grace period, and the run says it converged (its exit
code would be 0). See docs/rotation.md#reconcile.

The default profile runs a few hundred examples in about a minute; set
``PATWARDEN_HYPOTHESIS_PROFILE=thorough`` for many more (CONTRIBUTING.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import hypothesis
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests.reliability.convergence_world import (
    HELD_ROUTES,
    REVOKE_AFTER,
    ConvergenceWorld,
    KillPlan,
)
from tests.support.emulator import RunningEmulator, start_emulator, stop_emulator

PROFILE_ENV = "PATWARDEN_HYPOTHESIS_PROFILE"
PROFILES = {
    # examples, steps per example
    "smoke": (10, 3),
    "default": (200, 3),
    "thorough": (2000, 8),
}
FAULT_ROUTES = (
    r"^POST /vssps/[^/]+/_apis/tokens/pats",
    r"^GET /vssps/[^/]+/_apis/tokens/pats",
    r"^PUT /secrets/",
    r"^GET /secrets/",
    r"^GET /devops/[^/]+/[^/]+/_apis/distributedtask/variablegroups/",
    r"^PUT /devops/.*/_apis/distributedtask/variablegroups/",
    r"^GET /devops/[^/]+/_apis/projects",
)

_world: ConvergenceWorld | None = None


class ConvergenceModel(RuleBasedStateMachine):
    """One token; external events and broken runs; one clean run after each must converge."""

    @initialize()
    def start(self) -> None:
        assert _world is not None
        self.world = _world
        self.world.new_token()

    # --- the check after every step ---------------------------------------------------------

    def converge(self) -> None:
        report = self.world.rotate()
        problems = self.world.desired_state_problems(report)
        assert not problems, problems
        hypothesis.event(f"clean run: {report.outcomes[0].kind}")

    @invariant()
    def clean_run_converges(self) -> None:
        if hasattr(self, "world"):
            self.converge()

    # --- what the world does ----------------------------------------------------------------

    @rule()
    def revoke_current(self) -> None:
        current = self.world.current_id()
        if current:
            self.world.revoke_externally(current)

    @precondition(lambda self: bool(self.world.previous_ids()))
    @rule()
    def revoke_previous(self) -> None:
        self.world.revoke_externally(self.world.previous_ids()[0])

    @rule(disable=st.booleans())
    def key_vault_changed(self, disable: bool) -> None:
        self.world.overwrite_key_vault(disable=disable)

    @rule(what=st.sampled_from(["delete", "foreign", "other-only"]))
    def group_edited_by_hand(self, what: str) -> None:
        self.world.edit_group(delete_pat=what == "delete", foreign_pat=what == "foreign")

    @rule(delete=st.booleans())
    def file_changed(self, delete: bool) -> None:
        self.world.overwrite_file(delete=delete)

    @rule(jump=st.sampled_from(["minutes", "past grace", "due", "past expiry"]))
    def clock_jumps(self, jump: str) -> None:
        deltas = {
            "minutes": timedelta(minutes=10),
            "past grace": REVOKE_AFTER + timedelta(minutes=5),
            "due": timedelta(days=24),
            "past expiry": timedelta(days=31),
        }
        self.world.jump(deltas[jump])

    @rule()
    def force_rotation(self) -> None:
        report = self.world.rotate(force=True)
        hypothesis.event(f"forced: {report.outcomes[0].kind}")

    @rule(at=st.integers(min_value=1, max_value=40), after=st.booleans(), force=st.booleans())
    def killed_at_a_port_call(self, at: int, after: bool, force: bool) -> None:
        killed = self.world.killed_run(KillPlan(at=at, after=after), force=force)
        hypothesis.event("killed at a port call" if killed else "run finished before the kill")

    @rule(
        route=st.sampled_from(HELD_ROUTES),
        after=st.booleans(),
        release=st.sampled_from(["continue", "drop"]),
    )
    def killed_at_a_held_request(self, route: str, after: bool, release: str) -> None:
        held = self.world.kill_at_held(route, after=after, release=release)
        hypothesis.event("killed at a held request" if held else "route not reached")

    @rule(route=st.sampled_from(FAULT_ROUTES), after=st.booleans(), force=st.booleans())
    def fault(self, route: str, after: bool, force: bool) -> None:
        # HTTP 501 is an error no client retries: the run fails at once instead of sleeping
        # through backoffs (the fault and crash suites cover retries); with ``after`` the
        # service acted before the answer was lost.
        with self.world.faults(route, after=after):
            report = self.world.rotate(force=force)
        hypothesis.event(f"fault: {report.outcomes[0].kind}")

    @rule()
    def concurrent_runs(self) -> None:
        reports = self.world.concurrently()
        assert len(reports) == 2


# Read when the module is imported: the autouse `clean_environ` fixture removes every
# PATWARDEN_* variable before the test runs.
_PROFILE = os.environ.get(PROFILE_ENV, "default")


def _profile() -> tuple[int, int]:
    name = _PROFILE
    if name not in PROFILES:
        raise pytest.UsageError(f"{PROFILE_ENV}={name!r}: choose one of {', '.join(PROFILES)}")
    return PROFILES[name]


@pytest.fixture(scope="module")
def convergence_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConvergenceWorld]:
    """A dedicated emulator: the model moves its business clock."""
    emulator: RunningEmulator = start_emulator(tmp_path_factory.mktemp("convergence-emulator"))
    root = tmp_path_factory.mktemp("convergence")
    try:
        with emulator.http(timeout=30) as http:
            world = ConvergenceWorld(emulator=emulator, root=Path(root), http=http)
            try:
                yield world
            finally:
                world.close()
    finally:
        stop_emulator(emulator)


@pytest.mark.slow
def test_every_step_converges_on_the_next_clean_run(convergence_world: ConvergenceWorld) -> None:
    global _world
    examples, steps = _profile()
    _world = convergence_world
    try:
        ConvergenceModel.TestCase.settings = settings(
            database=None,  # no .hypothesis directory in the work tree
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        ConvergenceModel.TestCase().runTest()
    finally:
        _world = None
