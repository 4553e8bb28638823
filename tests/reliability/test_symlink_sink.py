"""A symlink planted at a file sink's paths: `rotate` refuses to follow it and loses nothing.

Someone who can write the sink's directory plants a link at the file's path (or at its kept
``.previous`` copy, or its metadata sidecar) pointing at a file of their choosing, hoping the next
rotation writes the PAT there. The rotation must refuse, roll back the other sinks, leave the link
and its target untouched, and keep every sink serving a PAT that works.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import RunningEmulator
from tests.reliability.figures import record
from tests.reliability.leaks import LeakScanner
from tests.reliability.world import World

TOKEN = "linked"


@pytest.mark.parametrize("planted", ["", ".previous", ".patwarden.json"])
def test_a_planted_symlink_is_refused_and_nothing_is_lost(
    emulator: RunningEmulator, tmp_path: Path, leak_scan: LeakScanner, planted: str
) -> None:
    world = World(emulator, tmp_path, leak_scan, tokens=(TOKEN,))
    try:
        assert world.cli("rotate", "--token", TOKEN, "--force").code == 0
        before = world.served(TOKEN)
        victim = tmp_path / "attacker-chosen"
        victim.write_text("untouched")
        link = world.sink_file(TOKEN).with_name(TOKEN + planted)
        link.unlink(missing_ok=True)
        link.symlink_to(victim)

        run = world.cli("rotate", "--token", TOKEN, "--force")

        assert run.code != 0, "a refused sink must fail the rotation"
        assert "symbolic link" in run.stdout + run.stderr
        assert link.is_symlink(), "the link is reported, not removed"
        assert victim.read_text() == "untouched", "nothing was written through the link"
        after = world.served(TOKEN)
        assert after["key_vault"] == before["key_vault"], "Key Vault was restored"
        # A variable group cannot be restored (Azure DevOps never returns secret values): it
        # keeps the new PAT, which therefore stays valid until a later rotation replaces it.
        for sink in ("key_vault", "variable_group"):
            assert world.authenticates(str(after[sink])), f"{sink} serves a refused PAT"
        if planted:  # the file itself is intact and still serves the PAT it held
            assert after["file"] == before["file"]

        link.unlink()  # the operator removes the link; the next rotation cleans up everything
        if not planted:
            world.sink_file(TOKEN).write_text(str(before["file"]))
        assert world.cli("rotate", "--token", TOKEN, "--force").code == 0
        time.sleep(1.1)  # the orphan margin
        world.cli("rotate", "--token", TOKEN)
        assert world.settled_problems(TOKEN) == []
        record("bad_input", kind="symlink", case=planted or "path", tried=1)
    finally:
        world.close()
