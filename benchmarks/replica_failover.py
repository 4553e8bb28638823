"""Replica failover: three ``patwarden serve`` on one PostgreSQL state, the leader killed N times.

Starts the emulator and a throwaway PostgreSQL server (Debian's, as the tests do), signs the
rotator in, starts three replicas and kills the leader ``--kills`` times (default 20), alternating
SIGKILL and SIGSTOP (the stopped one is continued and must find itself fenced); each killed
replica is replaced. Prints::

    failovers=N max_failover_s=X max_sigkill_failover_s=X max_sigstop_failover_s=X
        double_rotations=0 writes_after_fencing=0 tokens=T  (one line)

A failover is the time from the signal to another replica's ``leader`` log line; the limit is
``state.failover`` (3 s here), for SIGKILL and SIGSTOP alike. Not part of the test suite
(``tests/reliability/test_replicas.py`` runs two kills)::

    .venv/bin/python benchmarks/replica_failover.py --kills 20
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for tests.*
from tests.support.emulator import start_emulator, stop_emulator
from tests.support.replicas import FAILOVER_S, run_replicas
from tests.support.state_servers import start_postgres


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=4)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="patwarden-replicas-"))
    (work / "emulator").mkdir()
    (work / "run").mkdir()
    emulator = start_emulator(work / "emulator")
    pg_dir = Path(tempfile.mkdtemp(prefix="patwarden-pg-"))  # its own: the server may run as nobody
    postgres = start_postgres(pg_dir)
    try:
        figures = run_replicas(
            emulator, postgres.new_database(), work / "run", kills=args.kills, tokens=args.tokens
        )
    finally:
        postgres.process.send_signal(signal.SIGINT)
        postgres.process.wait(30)
        stop_emulator(emulator)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(pg_dir, ignore_errors=True)
    print(figures.summary())
    for kind in ("SIGKILL", "SIGSTOP"):
        times = [t for t, k in zip(figures.failovers, figures.kinds, strict=True) if k == kind]
        print(f"{kind.lower()}_failover_s=" + ",".join(f"{t:.1f}" for t in times))
    ok = (
        figures.double_rotations == 0
        and figures.writes_after_fencing == 0
        and figures.worst() < FAILOVER_S
    )
    print(f"limit_s={FAILOVER_S} {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
