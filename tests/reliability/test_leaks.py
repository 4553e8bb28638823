"""The leak scanner finds what it must: a scanner that cannot fail would prove nothing."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.conftest import RunningEmulator
from tests.reliability.leaks import LeakScanner

PAT = "a" * 20 + "b/c+d" + "e" * 27  # 52 characters, with characters URL-quoting changes


def test_finds_a_secret_in_text_in_every_form() -> None:
    scanner = LeakScanner()
    scanner.remember("pat", PAT)
    basic = base64.b64encode(b":" + PAT.encode()).decode()
    scanner.capture("stdout", f"token={PAT}")
    scanner.capture("stderr", f"Authorization: Basic {basic}")
    scanner.capture("url", "https://u:" + PAT.replace("/", "%2F").replace("+", "%2B") + "@h")
    scanner.capture("clean", "nothing to see " + PAT[:10])

    found = {(leak.form, leak.where) for leak in scanner.leaks()}

    assert found == {("plain", "stdout"), ("basic-auth", "stderr"), ("url-quoted", "url")}
    assert PAT not in " ".join(str(leak) for leak in scanner.leaks()), "a leak never shows it"


def test_files_outside_the_sinks_are_leaks_and_sinks_must_be_0600(tmp_path: Path) -> None:
    scanner = LeakScanner()
    scanner.remember("pat", PAT)
    scanner.watch(tmp_path)
    sink, stray, loose = tmp_path / "sink", tmp_path / "state" / "journal.db", tmp_path / "loose"
    stray.parent.mkdir()
    for path in (sink, stray, loose):
        path.write_text(f"x{PAT}y")
    sink.chmod(0o600)
    loose.chmod(0o644)
    (tmp_path / "link").symlink_to(sink)  # links are not followed (the target is scanned once)
    scanner.allow(sink, loose)

    leaks = {(leak.form, leak.where) for leak in scanner.leaks()}

    assert leaks == {("plain", f"file {stray}"), ("file mode 0644", f"file {loose}")}
    assert scanner.files_scanned == 3


def test_short_values_are_not_searched() -> None:
    scanner = LeakScanner()
    scanner.remember("pat", "short")
    scanner.capture("stdout", "a short text")
    assert scanner.leaks() == []


def test_knows_every_secret_the_emulator_issued(emulator: RunningEmulator) -> None:
    user = emulator["identities"]["rotator"]["username"]
    valid_to = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    created = emulator.admin(
        "POST",
        "/pats",
        json={
            "username": user,
            "displayName": "leak-test",
            "scope": "vso.code",
            "validTo": valid_to,
        },
    ).json()
    scanner = LeakScanner(emulator=emulator)
    scanner.capture("stdout", "created " + created["token"])

    assert [(leak.kind, leak.where) for leak in scanner.leaks()] == [("pat", "stdout")]
