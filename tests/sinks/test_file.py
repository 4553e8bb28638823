"""The file sink on real files: contract, formats, permissions, symlinks, atomicity, restore."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from patwarden.plugins.testing import SinkContract, fake_meta, fake_pat
from patwarden.rotation.ports import SinkVersion
from patwarden.secret import Secret
from patwarden.sinks import safe_files
from patwarden.sinks.errors import SinkConfigError, SinkReadFailed, SinkRefused, SinkUnavailable
from patwarden.sinks.file import FileSink
from patwarden.sinks.spec import SinkContext

FORMATS = ("raw", "env", "json", "git_credentials")


def _no_credentials(name: str) -> Any:
    raise AssertionError(f"the file sink asked for credential {name!r}")


CONTEXT = SinkContext(credential=_no_credentials)


def make_sink(path: Path, **keys: Any) -> FileSink:
    return FileSink.from_spec({"kind": "file", "path": str(path), **keys}, CONTEXT)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def secret_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "secrets"
    directory.mkdir(mode=0o700)
    return directory


class TestFileSinkContract(SinkContract):
    kind = "file"

    @pytest.fixture(params=FORMATS)
    def sink(self, request: pytest.FixtureRequest, secret_dir: Path) -> FileSink:
        return make_sink(secret_dir / "pat", format=request.param, host="dev.azure.com")


# --- formats ------------------------------------------------------------------------------------


def test_raw_is_the_value_alone(secret_dir: Path) -> None:
    sink = make_sink(secret_dir / "pat")
    sink.write(Secret("abc123"), fake_meta())
    assert (secret_dir / "pat").read_bytes() == b"abc123"


def test_env_is_one_assignment_line(secret_dir: Path) -> None:
    sink = make_sink(secret_dir / "pat.env", format="env", variable="FLUX_PAT")
    sink.write(Secret("abc123"), fake_meta())
    assert (secret_dir / "pat.env").read_text() == "FLUX_PAT=abc123\n"


def test_env_defaults_to_the_azure_devops_cli_variable(secret_dir: Path) -> None:
    sink = make_sink(secret_dir / "pat.env", format="env")
    sink.write(Secret("abc123"), fake_meta())
    assert (secret_dir / "pat.env").read_text() == "AZURE_DEVOPS_EXT_PAT=abc123\n"


def test_json_carries_token_id_and_expiry(secret_dir: Path) -> None:
    meta = fake_meta("npm-feed")
    make_sink(secret_dir / "pat.json", format="json").write(Secret("abc123"), meta)
    body = json.loads((secret_dir / "pat.json").read_text())
    assert body == {
        "token": "abc123",
        "authorization_id": meta.authorization_id,
        "valid_to": meta.valid_to.isoformat(),
        "token_name": "npm-feed",
    }


def test_git_credentials_line_quotes_the_value(secret_dir: Path) -> None:
    sink = make_sink(
        secret_dir / "git-credentials",
        format="git_credentials",
        host="dev.azure.com",
        username="flux",
    )
    sink.write(Secret("ab/c+d@e"), fake_meta())
    assert (
        secret_dir / "git-credentials"
    ).read_text() == "https://flux:ab%2Fc%2Bd%40e@dev.azure.com\n"
    assert sink.read_back() == Secret("ab/c+d@e")


def test_a_value_with_a_line_break_is_refused(secret_dir: Path) -> None:
    sink = make_sink(secret_dir / "pat", format="env")
    with pytest.raises(SinkRefused, match="line break"):
        sink.write(Secret("abc\nEVIL=1"), fake_meta())
    assert not (secret_dir / "pat").exists()


def test_read_back_of_foreign_content_fails_without_echoing_it(secret_dir: Path) -> None:
    (secret_dir / "pat.json").write_text("not json at all: hunter2")
    sink = make_sink(secret_dir / "pat.json", format="json")
    with pytest.raises(SinkReadFailed, match="json format") as caught:
        sink.read_back()
    assert "hunter2" not in str(caught.value)


def test_read_back_of_a_missing_file_fails(secret_dir: Path) -> None:
    with pytest.raises(SinkReadFailed, match="does not exist"):
        make_sink(secret_dir / "pat").read_back()


# --- permissions --------------------------------------------------------------------------------


def test_every_file_is_0600_even_with_a_permissive_umask(secret_dir: Path) -> None:
    sink = make_sink(secret_dir / "pat")
    old_umask = os.umask(0o000)
    try:
        sink.write(fake_pat(), fake_meta())
        sink.write(fake_pat(), fake_meta())
    finally:
        os.umask(old_umask)
    assert mode(secret_dir / "pat") == 0o600
    assert mode(secret_dir / "pat.previous") == 0o600
    assert mode(secret_dir / "pat.patwarden.json") == 0o600


def test_an_existing_world_readable_file_becomes_0600(secret_dir: Path) -> None:
    target = secret_dir / "pat"
    target.write_text("old")
    target.chmod(0o644)
    make_sink(target).write(fake_pat(), fake_meta())
    assert mode(target) == 0o600
    assert mode(secret_dir / "pat.previous") == 0o600


@pytest.mark.parametrize("dir_mode", [0o777, 0o770, 0o722])
def test_a_directory_others_can_write_is_refused(tmp_path: Path, dir_mode: int) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(dir_mode)
    with pytest.raises(SinkRefused, match="writable by group or others") as caught:
        make_sink(shared / "pat").write(fake_pat(), fake_meta())
    assert "chmod go-w" in str(caught.value)
    assert list(shared.iterdir()) == []


def test_a_sticky_world_writable_directory_we_own_is_refused_too(tmp_path: Path) -> None:
    # Like /tmp for root: ours and sticky, but any user may plant names in it (issue 11, item 7).
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    with pytest.raises(SinkRefused, match="writable by group or others"):
        make_sink(sticky / "pat").write(fake_pat(), fake_meta())
    assert list(sticky.iterdir()) == []


def test_a_missing_directory_is_refused_with_a_fix(tmp_path: Path) -> None:
    with pytest.raises(SinkRefused, match="does not exist") as caught:
        make_sink(tmp_path / "nope" / "pat").write(fake_pat(), fake_meta())
    assert "mkdir -m 700" in str(caught.value)


# --- symlinks -----------------------------------------------------------------------------------


@pytest.mark.parametrize("planted", ["pat", "pat.previous", "pat.patwarden.json"])
def test_a_planted_symlink_is_refused_and_not_followed(
    secret_dir: Path, tmp_path: Path, planted: str
) -> None:
    sink = make_sink(secret_dir / "pat")
    sink.write(fake_pat(), fake_meta())  # so that .previous would be written next time
    victim = tmp_path / "victim"
    victim.write_text("precious")
    link = secret_dir / planted
    link.unlink(missing_ok=True)
    link.symlink_to(victim)
    with pytest.raises(SinkRefused, match="symbolic link"):
        sink.write(fake_pat(), fake_meta())
    assert victim.read_text() == "precious"
    assert link.is_symlink()


def test_read_back_refuses_a_symlink(secret_dir: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("abc")
    (secret_dir / "pat").symlink_to(victim)
    with pytest.raises(SinkRefused, match="symbolic link"):
        make_sink(secret_dir / "pat").read_back()


def test_a_directory_at_the_target_path_is_refused(secret_dir: Path) -> None:
    (secret_dir / "pat").mkdir()
    with pytest.raises(SinkRefused, match="not a regular file"):
        make_sink(secret_dir / "pat").write(fake_pat(), fake_meta())


# --- atomicity ----------------------------------------------------------------------------------


def test_readers_see_the_old_or_the_new_value_never_a_mix(secret_dir: Path) -> None:
    sink = make_sink(secret_dir / "pat", format="json")
    values = {fake_pat().reveal() for _ in range(30)}
    sink.write(Secret("initial"), fake_meta())
    allowed = {*values, "initial"}
    seen: set[str] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.add(json.loads((secret_dir / "pat").read_bytes())["token"])

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for value in values:
            sink.write(Secret(value), fake_meta())
    finally:
        stop.set()
        thread.join()
    assert seen <= allowed
    assert len(seen) > 1


def test_a_failed_write_leaves_the_old_file_and_no_temp_files(
    secret_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = make_sink(secret_dir / "pat")
    old = fake_pat()
    version = sink.write(old, fake_meta())
    before = sorted(p.name for p in secret_dir.iterdir())

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safe_files.os, "fsync", disk_full)
    with pytest.raises(SinkUnavailable, match=r"No space left on device.*not changed"):
        sink.write(fake_pat(), fake_meta())
    monkeypatch.undo()
    assert sorted(p.name for p in secret_dir.iterdir()) == before
    assert sink.read_back() == old
    assert sink.current_version() == version


# --- versions and restore -----------------------------------------------------------------------


def test_sidecar_records_metadata_but_never_the_value(secret_dir: Path) -> None:
    pat, meta = fake_pat(), fake_meta()
    make_sink(secret_dir / "pat").write(pat, meta)
    text = (secret_dir / "pat.patwarden.json").read_text()
    assert pat.reveal() not in text
    current = json.loads(text)["current"]
    assert current["authorization_id"] == meta.authorization_id
    assert current["operation_id"] == meta.operation_id
    assert current["token_name"] == meta.token_name
    assert current["valid_to"] == meta.valid_to.isoformat()


def test_empty_sink_has_no_version(secret_dir: Path) -> None:
    assert make_sink(secret_dir / "pat").current_version() is None


def test_a_file_patwarden_did_not_write_is_unmanaged_and_restorable(secret_dir: Path) -> None:
    target = secret_dir / "pat"
    target.write_text("hand-made")
    sink = make_sink(target)
    before = sink.current_version()
    assert before == SinkVersion(ref="unmanaged", authorization_id=None)
    sink.write(fake_pat(), fake_meta())
    assert sink.restore(before) is True
    assert target.read_text() == "hand-made"
    assert sink.current_version() == before


def test_restore_none_removes_what_we_wrote(secret_dir: Path) -> None:
    sink = make_sink(secret_dir / "pat")
    sink.write(fake_pat(), fake_meta())
    assert sink.restore(None) is True
    assert not (secret_dir / "pat").exists()
    assert sink.current_version() is None


def test_restore_of_an_unknown_version_is_false_and_changes_nothing(secret_dir: Path) -> None:
    sink = make_sink(secret_dir / "pat")
    sink.write(fake_pat(), fake_meta())
    pat = fake_pat()
    current = sink.write(pat, fake_meta())
    assert sink.restore(SinkVersion(ref="0" * 32, authorization_id=None)) is False
    assert sink.read_back() == pat
    assert sink.current_version() == current


def test_restore_does_not_raise_on_a_damaged_sidecar(secret_dir: Path) -> None:
    sink = make_sink(secret_dir / "pat")
    first = sink.write(fake_pat(), fake_meta())
    sink.write(fake_pat(), fake_meta())
    (secret_dir / "pat.patwarden.json").write_text("{")
    assert sink.restore(first) is False
    with pytest.raises(SinkReadFailed, match="damaged") as caught:
        sink.current_version()
    assert "Delete" in str(caught.value.hint)


def test_describe_names_path_and_format(secret_dir: Path) -> None:
    sink = make_sink(secret_dir / "pat.env", format="env")
    assert sink.describe() == f"file {secret_dir / 'pat.env'} (env)"


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ({"path": "relative/pat"}, "sink.path: Value error, must be an absolute path"),
        ({"path": "/x", "format": "git_credentials"}, "needs `host`"),
        ({"path": "/x", "format": "yaml"}, "sink.format: Input should be"),
        ({"path": "/x", "colour": "red"}, "sink.colour: Extra inputs are not permitted"),
        ({}, "sink.path: Field required"),
        ({"path": "/x", "host": "https://dev.azure.com/"}, "sink.host: Value error"),
    ],
)
def test_invalid_entries_name_the_key(keys: dict[str, Any], problem: str) -> None:
    with pytest.raises(SinkConfigError) as caught:
        FileSink.from_spec({"kind": "file", **keys}, CONTEXT)
    assert problem in str(caught.value)
    assert caught.value.exit_code == 2


# --- a process killed mid-write (found by tests/reliability) ------------------------------------


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no cleanup handler sees it."""


def kill_at_replace_of(target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = safe_files.replace

    def replace(temp: Path, to: Path) -> None:
        if to == target:
            raise Killed
        real(temp, to)

    monkeypatch.setattr(safe_files, "replace", replace)


@pytest.mark.parametrize("at", ["pat.previous", "pat.patwarden.json", "pat"])
def test_killed_at_any_replace_the_version_named_is_the_value_held(
    secret_dir: Path, monkeypatch: pytest.MonkeyPatch, at: str
) -> None:
    # Before the fix the sidecar was written after the file: killed between the two, the file
    # held the new PAT under the old one's metadata, and a rollback revoked the PAT it served.
    sink = make_sink(secret_dir / "pat")
    old, new = fake_pat(), fake_pat()
    old_version = sink.write(old, fake_meta())
    kill_at_replace_of(secret_dir / at, monkeypatch)
    with pytest.raises(Killed):
        sink.write(new, fake_meta())
    monkeypatch.undo()

    assert sink.current_version() == old_version
    assert sink.read_back() == old, "the file holds what its metadata says"
    assert sink.restore(old_version) is True
    assert sink.read_back() == old


def test_killed_after_the_replace_the_file_names_the_new_pat_and_restores(
    secret_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = make_sink(secret_dir / "pat")
    old = fake_pat()
    old_version = sink.write(old, fake_meta())
    new = fake_pat()
    new_version = sink.write(new, fake_meta())

    assert sink.current_version() == new_version
    assert sink.restore(old_version) is True
    assert sink.read_back() == old
    assert sink.current_version() == old_version


def test_a_stale_previous_copy_is_not_restored(secret_dir: Path) -> None:
    sink = make_sink(secret_dir / "pat")
    first = sink.write(fake_pat(), fake_meta())
    sink.write(fake_pat(), fake_meta())
    (secret_dir / "pat.previous").unlink()
    (secret_dir / "pat.previous").write_text("someone else's copy")
    assert sink.restore(first) is False


def test_temp_files_a_killed_write_left_are_removed_by_the_next_write(
    secret_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = make_sink(secret_dir / "pat")
    sink.write(fake_pat(), fake_meta())
    kill_at_replace_of(secret_dir / "pat", monkeypatch)
    with pytest.raises(Killed):
        sink.write(fake_pat(), fake_meta())
    monkeypatch.undo()
    stale = [p.name for p in secret_dir.iterdir() if p.name.endswith(".tmp")]
    assert len(stale) == 1, "the killed write left its temp file (holding the PAT)"
    (secret_dir / ".other.0123456789ab.tmp").write_text("not ours")

    sink.write(fake_pat(), fake_meta())

    left = sorted(p.name for p in secret_dir.iterdir() if p.name.endswith(".tmp"))
    assert left == [".other.0123456789ab.tmp"]


def test_a_sidecar_without_inodes_is_still_read(secret_dir: Path) -> None:
    target = secret_dir / "pat"
    target.write_text("x")
    record = {"ref": "a" * 32, "authorization_id": "id-1"}
    sidecar = {"format": 1, "current": record, "previous": None}
    (secret_dir / "pat.patwarden.json").write_text(json.dumps(sidecar))
    assert make_sink(target).current_version() == SinkVersion(ref="a" * 32, authorization_id="id-1")


def test_reading_the_version_removes_only_old_temp_files(
    secret_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = make_sink(secret_dir / "pat")
    sink.write(fake_pat(), fake_meta())
    old, fresh = secret_dir / ".pat.aaaaaaaaaaaa.tmp", secret_dir / ".pat.bbbbbbbbbbbb.tmp"
    for path in (old, fresh):
        path.write_text("a killed write's copy")
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))

    sink.current_version()

    assert not old.exists()
    assert fresh.exists(), "it may belong to a write in progress"


# --- FIFOs (issue 11, item 7): refused at once, never waited on ----------------------------------


@pytest.mark.parametrize("where", ["pat", "pat.patwarden.json"])
def test_a_fifo_at_the_sink_path_or_its_sidecar_is_refused_without_hanging(
    secret_dir: Path, where: str
) -> None:
    sink = make_sink(secret_dir / "pat")
    sink.write(fake_pat(), fake_meta())
    (secret_dir / where).unlink()
    os.mkfifo(secret_dir / where)
    failures: list[BaseException] = []

    def every_read() -> None:
        for step in (sink.current_version, sink.read_back):
            try:
                step()
            except SinkRefused as err:
                failures.append(err)

    reader = threading.Thread(target=every_read, daemon=True)
    reader.start()
    reader.join(timeout=5)
    assert not reader.is_alive(), "a FIFO made the sink block"
    assert failures
    assert all("not a regular file" in str(err) for err in failures)
    with pytest.raises(SinkRefused, match="not a regular file"):
        sink.write(fake_pat(), fake_meta())
