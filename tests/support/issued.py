"""The secrets the emulator handed out (PATs, access and refresh tokens), and that none leaked.

This module is not assertion-rewritten by pytest, so a failure shows only its message, never the
secret it found.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.support.emulator import RunningEmulator


def issued_secrets(emulator: RunningEmulator) -> list[tuple[str, str]]:
    """Every PAT, access token and refresh token the emulator handed out since the reset."""
    secrets = emulator.admin("GET", "/issued-secrets").json()["secrets"]
    return [(str(item["kind"]), str(item["value"])) for item in secrets]


def assert_no_secret_in(emulator: RunningEmulator, *texts: str) -> None:
    """No secret value the emulator issued appears in any of *texts*."""
    for kind, value in issued_secrets(emulator):
        for text in texts:
            assert value not in text, f"a {kind} leaked into the output"


def assert_no_secret_in_state(emulator: RunningEmulator, state_db: Path) -> None:
    """No issued secret appears in the state database or its WAL, byte for byte."""
    with sqlite3.connect(state_db) as conn:
        conn.execute("PRAGMA wal_checkpoint(FULL)")
    conn.close()
    blobs = [
        path.read_bytes()
        for path in state_db.parent.iterdir()
        if path.name.startswith(state_db.name) and path.is_file()
    ]
    issued = issued_secrets(emulator)
    assert issued, "the emulator issued secrets during the test"
    for kind, value in issued:
        for blob in blobs:
            assert value.encode() not in blob, f"a {kind} is stored in the state database"
