"""Fault soak (issue 6): at least 300 forced rotations with seeded faults on every route.

Starts an emulator, writes a config of ``--tokens`` tokens (each with a Key Vault secret, a
variable group of its own and a file), signs the rotator in, and force-rotates every token in
process through ``patwarden.app.runtime.Runtime`` (real emulator, real httpx, real sinks) round
after round, with 10 % of the requests on every route meeting a seeded fault: HTTP 503, 429 with
``Retry-After: 1``, a connection silent for 1.5 s then dropped, or a connection reset. Between
rounds the faults are lifted and every sink is checked to serve a PAT that authenticates; at the
end a clean run past the orphan margin settles everything, and each token must have exactly one
active patwarden PAT, served by all its sinks. Every secret the emulator issued is then searched
for in the captured logs (all levels) and in every file of the work directory but the sinks.

Prints the figures as JSON; exit 1 if an invariant broke or a secret leaked.

    .venv/bin/python benchmarks/fault_soak.py [--rotations 300] [--tokens 10] [--seed 6]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for tests.*
from tests.reliability.crash_support import FAULT_RATE, Fleet, soak
from tests.reliability.leaks import LeakScanner
from tests.support.emulator import start_emulator, stop_emulator


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rotations", type=int, default=300)
    parser.add_argument("--tokens", type=int, default=10)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    collected = _Collect()
    root_logger = logging.getLogger()
    root_logger.addHandler(collected)
    root_logger.setLevel(logging.DEBUG)
    with tempfile.TemporaryDirectory(prefix="fault-soak-") as work:
        root = Path(work)
        emulator = start_emulator(root / "emulator")
        try:
            scanner = LeakScanner()
            names = tuple(f"soak-{n:02d}" for n in range(args.tokens))
            fleet = Fleet(emulator, root / "fleet", scanner, tokens=names, shared_group=False)
            try:
                figures = soak(
                    fleet, rotations=args.rotations, seed=args.seed, concurrency=args.concurrency
                )
            finally:
                fleet.close()
            root_logger.removeHandler(collected)
            scanner.capture("log records", "\n".join(collected.lines))
            leaks = scanner.leaks()
        finally:
            stop_emulator(emulator)
    result = {
        "fault_rate": FAULT_RATE,
        "tokens": args.tokens,
        "seed": args.seed,
        "concurrency": args.concurrency,
        **figures.as_counts(),
        "requests_per_rotation": round(figures.requests / max(figures.rotations, 1), 1),
        "log_records_scanned": len(collected.lines),
        "secrets_checked": scanner.secrets_checked,
        "files_scanned": scanner.files_scanned,
        "leaks": len(leaks),
        "problem_list": figures.problems,
        "not_rotated": figures.failures,
    }
    print(json.dumps(result, indent=2))
    return 0 if not figures.problems and not leaks else 1


if __name__ == "__main__":
    sys.exit(main())
