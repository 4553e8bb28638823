"""`patwarden rotate` through a hostile server: a clean failure, then nothing lost.

The real CLI reaches Azure DevOps and Key Vault through the hostile proxy (Entra directly). One
route's answer is mangled for a whole forced rotation — the service itself acts on every request,
only the answers are broken — and the run must end with a clean error, no traceback, and every
sink still serving a PAT that works. Then the proxy behaves, `rotate` runs again and once more past
the orphan margin, and exactly one active patwarden PAT is left, served by every sink.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunningEmulator
from tests.reliability.figures import record
from tests.reliability.hostile import HostileProxy, hostile_proxy
from tests.reliability.leaks import LeakScanner
from tests.reliability.world import World

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("hostile-rotation")]
TOKEN = "hostile"
CASES = [
    ("list", r"^GET /vssps/[^/]+/_apis/tokens/pats$", "html"),
    ("create", r"^POST /vssps/[^/]+/_apis/tokens/pats$", "garbage"),
    ("create", r"^POST /vssps/[^/]+/_apis/tokens/pats$", "truncate"),
    ("create", r"^POST /vssps/[^/]+/_apis/tokens/pats$", "retype"),
    ("key-vault-write", r"^PUT /secrets/", "truncate"),
    ("variable-group-write", r"^PUT .*/distributedtask/variablegroups", "garbage"),
    ("verify", r"^GET /devops/[^/]+/_apis/projects", "retype"),
    ("revoke", r"^DELETE /vssps/", "empty"),
]


@pytest.fixture
def proxied(
    emulator: RunningEmulator, tmp_path: Path, leak_scan: LeakScanner
) -> Iterator[tuple[World, HostileProxy]]:
    with hostile_proxy(emulator, tmp_path) as proxy:
        world = World(
            emulator,
            tmp_path,
            leak_scan,
            tokens=(TOKEN,),
            via=(proxy.url, tmp_path / "ca-bundle.pem"),
        )
        try:
            yield world, proxy
        finally:
            world.close()


@pytest.mark.parametrize(
    ("route", "mangle"), [case[1:] for case in CASES], ids=[f"{c[0]}-{c[2]}" for c in CASES]
)
def test_a_rotation_against_a_hostile_server_loses_nothing(
    proxied: tuple[World, HostileProxy], route: str, mangle: str
) -> None:
    world, proxy = proxied
    assert world.cli("rotate", "--token", TOKEN, "--force").code == 0
    proxy.add(route, mangle)

    hostile = world.cli("rotate", "--token", TOKEN, "--force")

    proxy.clear()
    assert "Traceback" not in hostile.stdout
    assert any(seen.mangle == mangle for seen in proxy.seen), "the route was never reached"
    during = world.serving_problems(TOKEN)
    recovery = world.cli("rotate", "--token", TOKEN)
    time.sleep(1.1)  # the orphan margin
    settle = world.cli("rotate", "--token", TOKEN)
    problems = during + world.settled_problems(TOKEN)
    record("bad_input", kind=f"rotate-through-{mangle}", tried=1, survived=int(not problems))
    assert problems == [], f"hostile run exited {hostile.code}, recovery {recovery.code}"
    assert settle.code == 0, settle.stdout[-1500:]
