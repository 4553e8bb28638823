"""Careful file I/O for secret files: no symlinks followed, 0600, atomic replace.

This is the one helper for every secret patwarden (and its emulator) writes to disk: file sinks,
the token cache, cache keys, the emulator's ready file (docs/security.md).

The rules (docs/sinks.md, "file"): the parent directory must not be writable by group or others
(so nobody else can swap our files; a sticky ``/tmp`` is refused too), the target must be a
regular file or absent (a planted symlink is refused, never followed), and every write goes to a
fresh ``O_EXCL | O_NOFOLLOW`` temp file with a random name in the same directory, created 0600,
fsynced and then ``os.replace``d over the target, so a reader sees the old content or the new,
never a mix. Directories patwarden keeps its own secrets in (state, token cache, keys) are created
0700, intermediate ones included, and refused when another user owns them or may write them
(:func:`ensure_private_directory`).
"""

from __future__ import annotations

import errno
import itertools
import os
import re
import secrets
import stat
import threading
import time
from pathlib import Path

from patwarden.errors import DOCS, StateError
from patwarden.sinks.errors import SINKS_DOCS, SinkRefused, SinkUnavailable

SECRET_FILE_MODE = 0o600
MAX_READ_BYTES = 1 << 20  # a PAT file is tiny; refuse to slurp something else by mistake
# O_NONBLOCK: opening a FIFO planted at a secret's path must not wait for a writer forever;
# the fstat that follows refuses anything but a regular file (for which the flag changes nothing).
_OPEN_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_OPEN_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
PRIVATE_DIRECTORY_MODE = 0o700
SECURITY_DOCS = f"{DOCS}/security.md#files-and-directories"


class UnsafeDirectory(StateError):
    """A directory for patwarden's own secrets is owned or writable by another user."""


def ensure_private_directory(directory: Path, *, purpose: str) -> None:
    """Create *directory* 0700 (missing parents too) and refuse it if others could tamper with it.

    *purpose* names it in messages ("state directory", "token cache directory"). A directory is
    trusted when it is owned by the current user (or root) and not writable by group or others.

    Raises:
        UnsafeDirectory: it is not a directory, belongs to another user or is group/world-writable.
    """
    missing = []
    for candidate in (directory, *directory.parents):
        if os.path.lexists(candidate):
            break
        missing.append(candidate)
    for created in reversed(missing):
        try:
            os.mkdir(created, PRIVATE_DIRECTORY_MODE)
        except FileExistsError:
            continue  # created meanwhile: checked below like any existing directory
        except OSError as err:
            raise UnsafeDirectory(
                f"Cannot create the {purpose} {created}: {err.strerror}.",
                hint="Create it yourself (mkdir -m 700) or point the setting elsewhere.",
                docs=SECURITY_DOCS,
            ) from None
        os.chmod(created, PRIVATE_DIRECTORY_MODE)  # a umask may have removed our own bits
    check_private_directory(directory, purpose=purpose)


def check_private_directory(directory: Path, *, purpose: str) -> None:
    """Refuse *directory* unless it is ours (or root's) and only its owner may write it.

    Raises:
        UnsafeDirectory: not a directory, owned by another user, or group/world-writable.
    """
    try:
        info = os.stat(directory)
    except OSError as err:
        raise UnsafeDirectory(
            f"Cannot use the {purpose} {directory}: {err.strerror}.",
            hint="Create it (mkdir -m 700) or point the setting elsewhere.",
            docs=SECURITY_DOCS,
        ) from None
    mode = stat.S_IMODE(info.st_mode)
    if not stat.S_ISDIR(info.st_mode):
        problem = "it is not a directory"
    elif info.st_uid not in (os.geteuid(), 0):
        problem = f"it belongs to another user (uid {info.st_uid}), who could swap its files"
    elif mode & (stat.S_IWGRP | stat.S_IWOTH):
        problem = (
            f"it is writable by group or others (mode {mode:04o}), so another user could plant "
            "links or files in it"
        )
    else:
        return
    raise UnsafeDirectory(
        f"Refusing the {purpose} {directory}: {problem}.",
        hint=(
            f"Use a directory only patwarden's user owns and writes (`chmod 700 {directory}` if "
            "it is yours), or point the setting elsewhere."
        ),
        docs=SECURITY_DOCS,
    )


def check_directory(directory: Path) -> None:
    """Refuse a directory others could use to swap our files.

    A sticky world-writable directory (``/tmp``) is refused too: when patwarden runs as root it
    owns ``/tmp``, but every other user may still create names in it.

    Raises:
        SinkRefused: missing, not a directory, or writable by group or others.
    """
    try:
        info = os.stat(directory)
    except FileNotFoundError:
        raise SinkRefused(
            f"Cannot write into {directory}: the directory does not exist.",
            hint=f"Create it (mkdir -m 700 {directory}) or point the sink's path elsewhere.",
            docs=SINKS_DOCS,
        ) from None
    except OSError as err:
        raise SinkUnavailable(
            f"Cannot inspect the directory {directory}: {err.strerror}.",
            hint="Check that patwarden's user may traverse that directory.",
        ) from None
    if not stat.S_ISDIR(info.st_mode):
        raise SinkRefused(
            f"Cannot write into {directory}: it is not a directory.",
            hint="Point the sink's path at a file inside a directory.",
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise SinkRefused(
            f"Refusing to write a secret into {directory}: the directory is writable by group or "
            f"others (mode {stat.S_IMODE(info.st_mode):04o}), so another user could replace or "
            "redirect the file.",
            hint=f"Run `chmod go-w {directory}`, or choose a directory only patwarden's user can "
            "write.",
            docs=SINKS_DOCS,
        )


def check_not_symlink(path: Path) -> bool:
    """Return whether *path* exists as a regular file; refuse anything else that is there.

    Raises:
        SinkRefused: *path* is a symlink (possibly planted to redirect the secret) or not a
            regular file.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(info.st_mode):
        raise SinkRefused(
            f"Refusing to write through the symbolic link {path}: a link at a secret's path can "
            "redirect the secret to a place chosen by whoever planted it.",
            hint=f"Remove the link (rm {path}) if you did not create it on purpose, or point the "
            "sink at the real file.",
            docs=SINKS_DOCS,
        )
    if not stat.S_ISREG(info.st_mode):
        raise SinkRefused(
            f"Refusing to replace {path}: it is not a regular file.",
            hint="Point the sink's path at a regular file (or a path that does not exist yet).",
        )
    return True


def read_file(path: Path) -> bytes | None:
    """Return the content of the regular file *path*, or None when it does not exist.

    Raises:
        SinkRefused: *path* is a symlink or not a regular file.
        SinkUnavailable: the file could not be read.
    """
    try:
        fd = os.open(path, _OPEN_READ)
    except FileNotFoundError:
        return None
    except OSError as err:
        if err.errno == errno.ELOOP:
            check_not_symlink(path)  # raises the explanatory SinkRefused
        raise SinkUnavailable(
            f"Cannot read {path}: {err.strerror}.",
            hint="Check the file's owner and permissions.",
        ) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SinkRefused(
                f"Refusing to read {path}: it is not a regular file (a FIFO, socket or device "
                "there could block patwarden or feed it someone else's data).",
                hint=f"Remove it (rm {path}) if you did not put it there on purpose.",
                docs=SINKS_DOCS,
            )
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(MAX_READ_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_READ_BYTES:
        raise SinkRefused(
            f"Refusing to read {path}: it is larger than {MAX_READ_BYTES} bytes, which no PAT "
            "file is.",
            hint="Check that the sink's path points at the right file.",
        )
    return data


def write_temp(directory: Path, stem: str, data: bytes) -> Path:
    """Write *data* to a new 0600 temp file in *directory*, fsync it and return its path.

    Raises:
        OSError: the file could not be created or written (the temp file is removed).
    """
    temp = directory / f".{stem}.{secrets.token_hex(6)}.tmp"
    fd = os.open(temp, _OPEN_NEW, SECRET_FILE_MODE)
    try:
        os.fchmod(fd, SECRET_FILE_MODE)  # the umask may have removed bits; never added any
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        temp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return temp


_TEMP_NAME = re.compile(r"^\.(?P<stem>.+)\.[0-9a-f]{12}\.tmp$")
_QUIET = 1.0  # seconds a directory must not have changed before its scan is kept
_Temps = dict[str, tuple[str, ...]]
_scans_lock = threading.Lock()  # guards the three below
_kept: dict[str, tuple[int, _Temps]] = {}  # by directory: (its mtime, the scan), while quiet
_latest: dict[str, tuple[int, _Temps]] = {}  # by directory: (ticket when begun, the scan)
_scanning: dict[str, threading.Lock] = {}  # by directory: held by the thread scanning it
_tickets = itertools.count()  # orders the calls and the scans' beginnings


def _file_system_now() -> float:
    """The wall clock file times are stamped with (st_mtime is not the run's clock)."""
    return time.time()


def _temps_by_stem(directory: Path) -> _Temps | None:
    """The temp files :func:`write_temp` made in *directory*, by stem (``None``: unreadable).

    A token's sinks ask on every run, and a directory of N file sinks would otherwise be listed N
    times a run (O(N²)). So:

    - a scan is kept while the directory's mtime is unchanged, once the directory had not
      changed for :data:`_QUIET` (a change within the same time-stamp tick as the scan would go
      unseen);
    - one thread scans a directory at a time, and a call that waited for a scan which *began
      after the call did* takes that scan: it saw every file that existed when the call was
      made. A fleet's workers, all asking while the directory changes, share one scan per wave.
    """
    key = str(directory)
    try:
        mtime = os.stat(directory).st_mtime_ns
    except OSError:
        return None
    with _scans_lock:
        called = next(_tickets)
        kept = _kept.get(key)
        scanning = _scanning.setdefault(key, threading.Lock())
    if kept is not None and kept[0] == mtime:
        return kept[1]
    with scanning:
        with _scans_lock:
            latest = _latest.get(key)
            began = next(_tickets)
        if latest is not None and latest[0] > called:
            return latest[1]
        found: dict[str, list[str]] = {}
        try:
            for entry in os.scandir(directory):
                match = _TEMP_NAME.match(entry.name)
                if match:
                    found.setdefault(match["stem"], []).append(entry.name)
        except OSError:
            return None
        temps = {stem: tuple(names) for stem, names in found.items()}
        with _scans_lock:
            _latest[key] = (began, temps)
            if _file_system_now() - mtime / 1e9 >= _QUIET:
                _kept[key] = (mtime, temps)
            else:
                _kept.pop(key, None)
        return temps


def remove_stale_temps(directory: Path, stem: str, *, older_than: float = 0.0) -> int:
    """Remove temp files :func:`write_temp` left for ``stem`` when a process died mid-write.

    They hold a secret (0600, in a directory only we may write); nobody else uses the name
    pattern ``.<stem>.<12 hex>.tmp``. Links and anything that is not a regular file are left
    alone, and so are files modified less than ``older_than`` seconds ago (a write in progress
    elsewhere). Returns how many were removed; errors are ignored (the next call tries again).
    The directory is listed once per change of it (:func:`_temps_by_stem`).
    """
    temps = _temps_by_stem(directory)
    if not temps:
        return 0
    removed = 0
    for name in temps.get(stem, ()):
        path = directory / name
        try:
            info = os.lstat(path)
            # A file's age: mtime is the file system's wall clock, so compare with that one.
            if stat.S_ISREG(info.st_mode) and _file_system_now() - info.st_mtime >= older_than:
                path.unlink()
                removed += 1
        except OSError:
            continue
    return removed


def replace(temp: Path, target: Path) -> None:
    """Atomically move *temp* over *target* and make the rename durable.

    Raises:
        OSError: the rename failed (*temp* is removed; *target* is unchanged).
    """
    try:
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_directory(target.parent)


def write_atomic(target: Path, data: bytes) -> None:
    """Replace *target* with *data* (mode 0600) so readers see old or new content, never a mix.

    Raises:
        OSError: nothing was replaced.
    """
    replace(write_temp(target.parent, target.name, data), target)


def write_private_file(
    path: Path, data: bytes, *, purpose: str = "secret file's directory"
) -> None:
    """Replace *path* with *data* (0600) in a private directory, created 0700 when missing.

    Raises:
        UnsafeDirectory: the directory is owned or writable by another user.
        OSError: nothing was replaced.
    """
    ensure_private_directory(path.parent, purpose=purpose)
    write_atomic(path, data)


def create_private_file(path: Path, data: bytes, *, purpose: str = "key file's directory") -> None:
    """Create *path* with *data* (0600) atomically; never replace a file that is already there.

    Raises:
        UnsafeDirectory: the directory is owned or writable by another user.
        FileExistsError: something (a file, a link) already exists at *path*.
        OSError: nothing was created.
    """
    ensure_private_directory(path.parent, purpose=purpose)
    temp = write_temp(path.parent, path.name, data)
    try:
        os.link(temp, path)  # fails on any existing name, a dangling symlink included
    finally:
        temp.unlink(missing_ok=True)
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Flush a directory entry change to disk (best effort where the OS does not support it)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on directories; the rename still happened
        pass
    finally:
        os.close(fd)
