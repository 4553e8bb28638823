"""Three ``patwarden serve`` replicas on one PostgreSQL state, and their leaders killed in turn.

Used by ``tests/reliability/test_replicas.py`` (two kills) and ``benchmarks/replica_failover.py``
(twenty). Every kill alternates SIGKILL (the leader's connection drops: a standby takes over at
its next attempt) and SIGSTOP (the leader hangs on to its connection: a standby takes over once
the lease lapsed, and the stopped leader, continued, finds itself fenced). A killed replica is
replaced. Measured: each failover's time (signal to another replica's ``leader`` log line);
checked: every token was rotated exactly once (one PAT created per token, in the emulator), and
no journal entry of an old epoch was written after a newer epoch's first one.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from tests.cli.serve_support import Serve, start_serve, wait_for
from tests.support.configs import sink_dir, write_config
from tests.support.device_codes import login_in_process
from tests.support.emulator import RunningEmulator

FAILOVER_S = 3  # state.failover in the replicas' config: every failover must take less


@dataclass
class ReplicaFigures:
    failovers: list[float] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # SIGKILL or SIGSTOP, one per failover
    double_rotations: int = 0
    writes_after_fencing: int = 0
    tokens: int = 0

    def worst(self, kind: str | None = None) -> float:
        """The longest failover (of signal *kind* when given), in seconds."""
        times = [t for t, k in zip(self.failovers, self.kinds, strict=True) if kind in (None, k)]
        return max(times, default=0.0)

    def summary(self) -> str:
        return (
            f"failovers={len(self.failovers)} max_failover_s={self.worst():.1f} "
            f"max_sigkill_failover_s={self.worst('SIGKILL'):.1f} "
            f"max_sigstop_failover_s={self.worst('SIGSTOP'):.1f} "
            f"double_rotations={self.double_rotations} "
            f"writes_after_fencing={self.writes_after_fencing} tokens={self.tokens}"
        )


def replica_config(emulator: RunningEmulator, work: Path, url: str, tokens: int) -> Path:
    sinks = sink_dir(work)
    entries = {
        f"replica-{i}": {
            "scopes": ["vso.code"],
            "lifetime": "30d",
            "rotate_before": "7d",
            "revoke_after": "0s",
            "sinks": [{"kind": "file", "path": str(sinks / f"replica-{i}.pat")}],
        }
        for i in range(tokens)
    }
    return write_config(
        emulator,
        work,
        tokens=entries,
        state={"backend": "postgresql", "url": url, "failover": f"{FAILOVER_S}s"},
        service={"check_interval": "2s", "check_jitter": "0s"},
    )


def _role(serve: Serve) -> str | None:
    roles = [e["event"] for e in serve.events() if e.get("event") in ("leader", "standby")]
    return roles[-1] if roles else None


def run_replicas(
    emulator: RunningEmulator, url: str, work: Path, *, kills: int, tokens: int = 4
) -> ReplicaFigures:
    """Start three replicas, kill *kills* leaders in turn, and return the figures."""
    config = replica_config(emulator, work, url, tokens)
    login_in_process(emulator, config)
    figures = ReplicaFigures(tokens=tokens)
    started = 0

    def start() -> Serve:
        nonlocal started
        started += 1
        return start_serve(config, work / f"serve-{started}.log")

    replicas = [start() for _ in range(3)]
    stopped: list[Serve] = []
    try:
        for kill in range(kills):
            live = [r for r in replicas if r not in stopped]
            leader = wait_for(
                "a leader",
                lambda live=live: next((r for r in live if _role(r) == "leader"), None),
                timeout=FAILOVER_S + 30,
            )
            counts = {id(r): len(r.events()) for r in replicas}
            signum = signal.SIGKILL if kill % 2 == 0 else signal.SIGSTOP
            signalled = time.monotonic()
            leader.signal(signum)
            others = [r for r in live if r is not leader]

            def took_over(others: list[Serve] = others, counts: dict[int, int] = counts) -> bool:
                return any(
                    e.get("event") == "leader" for r in others for e in r.events()[counts[id(r)] :]
                )

            wait_for(
                f"a failover (kill {kill + 1}, {signal.Signals(signum).name})",
                took_over,
                timeout=FAILOVER_S + 30,
            )
            figures.failovers.append(time.monotonic() - signalled)
            figures.kinds.append(signal.Signals(signum).name)
            if signum == signal.SIGKILL:
                leader.process.wait(30)
                replicas.remove(leader)
            else:
                leader.signal(signal.SIGCONT)  # it wakes up fenced and stands by
                seen = counts[id(leader)]
                wait_for(
                    f"the continued leader to stand by (kill {kill + 1})",
                    lambda leader=leader, seen=seen: any(
                        e.get("event") == "standby" for e in leader.events()[seen:]
                    ),
                    timeout=60,
                )
            replicas.append(start())
        wait_for("every token rotated", lambda: _all_rotated(url, tokens), timeout=120)
    finally:
        for replica in replicas:  # all at once: each takes a moment to shut down
            if replica.process.poll() is None:
                replica.signal(signal.SIGCONT)
                replica.signal(signal.SIGTERM)
        for replica in replicas:
            replica.stop()
    figures.double_rotations = _double_rotations(url, tokens)
    figures.writes_after_fencing = _writes_after_fencing(url)
    return figures


def _promoted(url: str) -> dict[str, int]:
    """How many times each token was promoted (a rotation that took effect), from the audit."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT token_name, count(*) FROM patwarden_audit WHERE kind = 'promoted'"
            " GROUP BY token_name"
        ).fetchall()
    return {str(name): int(count) for name, count in rows}


def _all_rotated(url: str, tokens: int) -> bool:
    return len(_promoted(url)) == tokens


def _double_rotations(url: str, tokens: int) -> int:
    promoted = _promoted(url)
    return sum(max(0, promoted.get(f"replica-{i}", 0) - 1) for i in range(tokens))


def _writes_after_fencing(url: str) -> int:
    """Journal entries written in an epoch older than one already written before them."""
    with psycopg.connect(url) as conn:
        epochs = [
            row[0] for row in conn.execute("SELECT epoch FROM patwarden_journal ORDER BY seq")
        ]
    late, newest = 0, 0
    for epoch in epochs:
        if epoch is None:
            continue
        if epoch < newest:
            late += 1
        newest = max(newest, epoch)
    return late
