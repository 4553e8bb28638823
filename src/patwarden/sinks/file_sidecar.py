"""The file sink's version records: what ``<path>.patwarden.json`` (no secret) says the file,
and ``<path>.previous``, hold — identified by inode, and the kept copy also by (mtime_ns, size)."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from patwarden.rotation.ports import SinkVersion

SIDECAR_FORMAT = 1


@dataclass(frozen=True)
class Record:
    """One version as the sidecar records it (no secret)."""

    ref: str
    authorization_id: str | None = None
    operation_id: str | None = None
    token_name: str | None = None
    valid_to: str | None = None
    # The inode of the file that held this version at the sink's path (None: not recorded, as
    # in sidecars of older versions). It tells which version the file holds after a crash.
    inode: int | None = None

    def version(self) -> SinkVersion:
        return SinkVersion(ref=self.ref, authorization_id=self.authorization_id)

    def at(self, inode: int | None) -> Record:
        return dataclasses.replace(self, inode=inode)

    @classmethod
    def parse(cls, raw: object) -> Record | None:
        if raw is None:
            return None
        if not isinstance(raw, Mapping) or not isinstance(raw.get("ref"), str):
            raise ValueError("a version record needs a string `ref`")
        fields = ("authorization_id", "operation_id", "token_name", "valid_to")
        values = {name: raw.get(name) for name in fields}
        if any(value is not None and not isinstance(value, str) for value in values.values()):
            raise ValueError("version record fields must be strings")
        inode = raw.get("inode")
        if inode is not None and (not isinstance(inode, int) or isinstance(inode, bool)):
            raise ValueError("`inode` must be a number")
        return cls(ref=raw["ref"], inode=inode, **values)


@dataclass(frozen=True)
class Sidecar:
    current: Record | None
    previous: Record | None
    kept_inode: int | None = None  # the inode of <path>.previous, which holds ``previous``
    # ... and its (mtime_ns, size): a file written there later may get the freed inode number
    kept_stamp: tuple[int, int] | None = None

    def dump(self) -> bytes:
        def record(value: Record | None) -> dict[str, Any] | None:
            return None if value is None else dict(value.__dict__)

        body = {
            "format": SIDECAR_FORMAT,
            "current": record(self.current),
            "previous": record(self.previous),
            "kept_inode": self.kept_inode,
            "kept_stamp": None if self.kept_stamp is None else list(self.kept_stamp),
        }
        return (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()

    def holding(self, inode: int | None) -> Record | None:
        """The version a file with ``inode`` at the sink's path holds (None: neither)."""
        if self.current is not None and self.current.inode in (None, inode):
            return self.current
        if self.previous is not None and inode is not None and self.previous.inode == inode:
            return self.previous  # killed after recording the write but before the replace
        return None


def stamp(path: Path) -> tuple[int, int] | None:
    """``path``'s (mtime_ns, size) without following a link, or None if it is not there."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    return (info.st_mtime_ns, info.st_size)


def inode(path: Path) -> int | None:
    """The inode of ``path`` itself (a link is not followed), or None if it is not there."""
    try:
        return os.lstat(path).st_ino
    except FileNotFoundError:
        return None
