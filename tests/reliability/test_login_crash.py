"""SIGKILL a run while it refreshes the rotator's sign-in: the refresh token must survive.

The access token in the cache is expired first (as an hour passing would), so the run must
redeem the refresh token at Entra and write the rolled cache back. The process is killed while
its token request is parked at the emulator (dropped, carried out with the answer lost, or
answered with the answer parked), or on entry to the rename that replaces the cache file. The
cache must still decrypt, hold a refresh token, and the next run must sign in silently.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from patwarden.config.model import load_config
from patwarden.identity.credential_set import CredentialSet
from tests.cli.support import let_access_tokens_expire
from tests.conftest import RunningEmulator
from tests.reliability.crash import RENAMES, run_until_syscall, strace_skip_reason, trace_syscalls
from tests.reliability.figures import record
from tests.reliability.invariants import wait_until
from tests.reliability.leaks import LeakScanner
from tests.reliability.world import World

pytestmark = pytest.mark.slow
TOKEN = "login"
RUN = ("rotate", "--token", TOKEN)
TOKEN_ROUTE = r"^POST /[^/]+/oauth2/v2\.0/token$"


def _refresh_tokens(config: Path) -> int:
    """How many refresh tokens the rotator's cache holds (it must decrypt to say)."""
    credentials = CredentialSet(load_config(config))
    try:
        envelope = credentials.user("rotator").store.load()
    finally:
        credentials.close()
    assert envelope is not None, "the cache is gone"
    return len(json.loads(envelope.msal_cache).get("RefreshToken", {}))


def _check_survived(world: World, what: str) -> None:
    assert _refresh_tokens(world.config) >= 1, f"{what}: the refresh token was lost"
    again = world.cli(*RUN)
    assert again.code == 0, f"{what}: the next run could not sign in: {again.stderr[-1500:]}"
    assert world.serving_problems(TOKEN) == []
    record("crash", point=what, release="login", survived=1, exercised=1)


@pytest.mark.parametrize(
    ("release", "after"),
    [("drop", False), ("continue", False), ("continue", True)],
    ids=["before-entra-saw-it", "entra-acted-client-died", "answer-lost"],
)
def test_killed_while_redeeming_the_refresh_token(
    emulator: RunningEmulator, tmp_path: Path, leak_scan: LeakScanner, release: str, after: bool
) -> None:
    world = World(emulator, tmp_path, leak_scan, tokens=(TOKEN,))
    try:
        assert world.cli(*RUN, "--force").code == 0
        let_access_tokens_expire(world.config)
        rule = {"route": TOKEN_ROUTE, "kind": "hold", "count": 1, "after": after}
        emulator.admin("POST", "/faults", json=rule)
        process = world.start(*RUN)
        held = wait_until(lambda: emulator.admin("GET", "/faults/held").json()["held"], timeout=60)
        assert held == 1, "the run never asked Entra for a token"
        process.kill()
        process.wait()
        emulator.admin("POST", "/faults/release", json={"action": release})
        emulator.admin("DELETE", "/faults")
        time.sleep(0.2)  # let a released request finish at the emulator

        _check_survived(world, f"Entra token request ({'answer ' if after else ''}{release})")
    finally:
        world.close()


@pytest.mark.skipif(strace_skip_reason() is not None, reason=strace_skip_reason() or "")
def test_killed_while_replacing_the_cache_file(
    emulator: RunningEmulator, tmp_path: Path, leak_scan: LeakScanner
) -> None:
    world = World(emulator, tmp_path, leak_scan, tokens=(TOKEN,))
    try:
        assert world.cli(*RUN, "--force").code == 0
        let_access_tokens_expire(world.config)
        cache = str(world.root / "state" / "rotator.cache")
        reference, calls = trace_syscalls(world, RUN, syscalls=RENAMES)
        assert reference.code == 0, reference.stderr[-1500:]
        cache_renames = [n for n, line in enumerate(calls, 1) if f'"{cache}"' in line]
        assert cache_renames, f"the run never replaced {cache}: {calls}"

        let_access_tokens_expire(world.config)
        killed = run_until_syscall(world, RUN, syscalls=RENAMES, nth=cache_renames[0])
        assert killed.killed, killed

        _check_survived(world, "rename of the token cache")
    finally:
        world.close()
