"""The one secret-file helper against a local attacker (issue 11, items 1 and 7).

The attacks need a second local user (:mod:`tests.support.local_user`); they are skipped with that
reason when the suite cannot create one.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from patwarden.identity.account import CacheEnvelope
from patwarden.identity.cache_crypto import CacheCipher, decode_cache_key, generate_cache_key
from patwarden.identity.cache_store import EncryptedFileStore
from patwarden.sinks import safe_files
from patwarden.sinks.errors import SinkRefused
from patwarden.sinks.safe_files import UnsafeDirectory
from tests.support.local_user import LocalUser, second_local_user, shared_directory


@pytest.fixture
def attacker() -> Iterator[LocalUser]:
    with second_local_user() as user:
        yield user


@pytest.fixture
def shared() -> Iterator[Path]:
    with shared_directory() as path:
        yield path


def _plant_links(attacker: LocalUser, directory: Path, name: str, victim: Path) -> None:
    """The old temp names: `.<name>.<pid>.tmp` for the next PIDs, each a link to *victim*."""
    first = os.getpid()
    script = (
        f"for pid in $(seq {first} {first + 400}); do "
        f'ln -s {victim} "{directory}/.{name}.$pid.tmp"; done'
    )
    attacker.run("sh", "-c", script)


def test_a_world_writable_state_directory_of_another_user_is_refused(
    attacker: LocalUser, shared: Path, tmp_path: Path
) -> None:
    # The repro: another user makes the state dir 0777 and plants links for the next PIDs.
    victim = tmp_path / "victim"
    victim.write_text("root's file\n")
    state = shared / "pwstate"
    attacker.run("mkdir", "-m", "777", str(state))
    _plant_links(attacker, state, "rotator.cache", victim)
    store = EncryptedFileStore(
        path=state / "rotator.cache",
        cipher=CacheCipher(key=decode_cache_key(generate_cache_key(), source="t"), source="t"),
    )
    with pytest.raises(UnsafeDirectory, match="belongs to another user") as caught:
        store.save(CacheEnvelope(account=None, msal_cache="{}"))
    hint = caught.value.hint or ""
    assert "chmod 700" in hint or "elsewhere" in hint
    assert victim.read_text() == "root's file\n"
    assert not (state / "rotator.cache").exists()
    with pytest.raises(UnsafeDirectory), store.locked():
        pass  # the lock file is not created there either


def test_a_group_or_world_writable_directory_of_ours_is_refused(tmp_path: Path) -> None:
    loose = tmp_path / "loose"
    loose.mkdir()
    loose.chmod(0o777)
    with pytest.raises(UnsafeDirectory, match=r"writable by group or others \(mode 0777\)"):
        safe_files.write_private_file(loose / "rotator.cache", b"x", purpose="token cache")
    assert list(loose.iterdir()) == []


def test_links_planted_at_the_old_temp_names_are_never_followed(tmp_path: Path) -> None:
    # In a directory we own, the planted names (`.<name>.<pid>.tmp`) are simply not used any more.
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    for pid in range(os.getpid(), os.getpid() + 50):
        (state / f".rotator.cache.{pid}.tmp").symlink_to(victim)
    safe_files.write_private_file(state / "rotator.cache", b"sealed", purpose="token cache")
    assert victim.read_text() == "untouched\n"
    info = os.lstat(state / "rotator.cache")
    assert stat.S_ISREG(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o600


def test_directories_are_created_0700_even_with_umask_000(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        safe_files.ensure_private_directory(tmp_path / "a" / "b" / "c", purpose="state directory")
    finally:
        os.umask(old)
    for path in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "c"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path


def test_a_key_file_is_created_once_and_never_through_a_planted_name(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    (keys / "cache.key").symlink_to(victim)  # a dangling-or-not link at the key's own name
    with pytest.raises(FileExistsError):
        safe_files.create_private_file(keys / "cache.key", b"k")
    assert victim.read_text() == "untouched\n"
    safe_files.create_private_file(keys / "other.key", b"k")
    assert stat.S_IMODE((keys / "other.key").stat().st_mode) == 0o600
    assert sorted(p.name for p in keys.iterdir()) == ["cache.key", "other.key"]  # no temp left


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pat"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            safe_files.read_file(fifo)
        except BaseException as err:  # handed to the test thread
            outcome.append(err)
        else:
            outcome.append(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=5)
    assert not reader.is_alive(), "reading a FIFO blocked"
    assert isinstance(outcome[0], SinkRefused)
    assert "not a regular file" in str(outcome[0])


def test_sticky_world_writable_directory_is_refused_for_secrets(shared: Path) -> None:
    # /tmp as root: sticky and owned by us, yet any user may create names in it.
    with pytest.raises(SinkRefused, match="writable by group or others"):
        safe_files.check_directory(shared)


def _temp(directory: Path, stem: str, digits: str) -> Path:
    path = directory / f".{stem}.{digits * 12}.tmp"
    path.write_text("left by a killed write")
    old = path.stat().st_mtime - 3600
    os.utime(path, (old, old))
    return path


def _quiet(directory: Path, age: float = 60.0) -> None:
    """Make *directory* look unchanged for *age* seconds (its scan may then be kept)."""
    when = directory.stat().st_mtime - age
    os.utime(directory, (when, when))


def test_a_quiet_directory_is_listed_once_for_every_sink_in_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """N file sinks in one directory ask for their stale temps on every run: one listing."""
    for i in range(50):
        (tmp_path / f"svc-{i}.pat").write_text("x")
    stale = _temp(tmp_path, "svc-49.pat", "a")
    _quiet(tmp_path)
    scans: list[str] = []
    real_scandir = os.scandir

    def counting(path: Any) -> Any:
        scans.append(str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", counting)
    removed = [safe_files.remove_stale_temps(tmp_path, f"svc-{i}.pat") for i in range(50)]
    assert removed == [0] * 49 + [1]
    assert not stale.exists()
    # Removing it changed the directory: listed again once, then kept while it stays quiet.
    _quiet(tmp_path)
    assert [safe_files.remove_stale_temps(tmp_path, f"svc-{i}.pat") for i in range(50)] == [0] * 50
    assert len(scans) == 2, scans


def test_workers_asking_while_the_directory_changes_share_one_scan_per_wave(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fleet's workers all ask while the directory is busy (never quiet, so nothing is kept):
    the ones that arrive during a scan wait for the next one and share it, and each still finds
    the temp file that existed when it asked."""
    stale = [_temp(tmp_path, f"svc-{i}.pat", "abcdef0123456789"[i]) for i in range(10)]
    scans: list[str] = []
    first_began, go_on = threading.Event(), threading.Event()
    real_scandir = os.scandir

    def counting(path: Any) -> Any:
        scans.append(str(path))
        if len(scans) == 1:
            first_began.set()
            go_on.wait(5)  # the others arrive while the first scan runs
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", counting)
    removed: dict[int, int] = {}

    def ask(i: int) -> None:
        removed[i] = safe_files.remove_stale_temps(tmp_path, f"svc-{i}.pat")

    first = threading.Thread(target=ask, args=(0,))
    first.start()
    assert first_began.wait(5)
    others = [threading.Thread(target=ask, args=(i,)) for i in range(1, 10)]
    for thread in others:
        thread.start()
    time.sleep(0.2)  # let them all reach the wait
    go_on.set()
    for thread in [first, *others]:
        thread.join(5)
    assert removed == {i: 1 for i in range(10)}, "each found the temp that was there"
    assert not any(path.exists() for path in stale)
    assert len(scans) == 2, f"one scan for the first, one shared by the nine others: {scans}"


def test_a_temp_file_left_after_a_scan_is_still_found(tmp_path: Path) -> None:
    _quiet(tmp_path)
    assert safe_files.remove_stale_temps(tmp_path, "a.pat") == 0  # listed and kept
    later = _temp(tmp_path, "a.pat", "b")  # the directory changes: its listing is stale
    assert safe_files.remove_stale_temps(tmp_path, "a.pat") == 1
    assert not later.exists()
    again = _temp(tmp_path, "a.pat", "c")  # a directory that just changed is never kept
    assert safe_files.remove_stale_temps(tmp_path, "a.pat", older_than=7200) == 0
    assert safe_files.remove_stale_temps(tmp_path, "a.pat") == 1
    assert not again.exists()
