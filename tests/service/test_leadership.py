"""One instance per state: the leadership lock is exclusive across processes and released when
its holder dies."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from patwarden.service.leadership import Leadership
from tests.support.clock import now


def test_one_leader_per_state(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    first, second = Leadership(state), Leadership(state)
    assert first.try_acquire(now=now())
    assert not second.try_acquire(now=now())
    assert "pid" in second.describe_holder()
    first.release()
    assert second.try_acquire(now=now())
    assert (tmp_path / "state.db.leader.json").stat().st_mode & 0o777 == 0o600


def test_a_killed_leader_lets_another_lead(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from datetime import UTC, datetime
                from pathlib import Path
                from patwarden.service.leadership import Leadership
                lead = Leadership(Path({str(state)!r}))
                assert lead.try_acquire(now=datetime(2026, 1, 1, tzinfo=UTC))
                print("leading", flush=True)
                time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "leading"
        other = Leadership(state)
        assert not other.try_acquire(now=now())
        holder.kill()
        holder.wait(timeout=10)
        assert other.try_acquire(now=now())
    finally:
        if holder.poll() is None:
            holder.kill()
        if holder.stdout:
            holder.stdout.close()
