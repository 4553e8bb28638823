"""The ``file`` sink: the PAT in a local file, replaced atomically, mode 0600.

Formats: ``raw`` (the value alone, no newline), ``env`` (``NAME=value``), ``json``
(``{"token", "authorization_id", "valid_to", "token_name"}``) and ``git_credentials``
(``https://user:PAT@host``, for git's ``credential.helper store``). The previous content is kept
as ``<path>.previous`` (0600) so :meth:`FileSink.restore` can put it back, and the version
metadata (never the value) lives in the sidecar ``<path>.patwarden.json``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import quote, unquote, urlsplit

from pydantic import Field, field_validator, model_validator

from patwarden.errors import SinkError
from patwarden.rotation.ports import SinkVersion, SinkWriteMeta
from patwarden.secret import Secret
from patwarden.sinks import safe_files
from patwarden.sinks.errors import (
    SINKS_DOCS,
    SinkReadFailed,
    SinkRefused,
    SinkUnavailable,
)
from patwarden.sinks.file_sidecar import SIDECAR_FORMAT as _SIDECAR_FORMAT
from patwarden.sinks.file_sidecar import Record as _Record
from patwarden.sinks.file_sidecar import Sidecar as _Sidecar
from patwarden.sinks.file_sidecar import inode as _inode
from patwarden.sinks.file_sidecar import stamp as _stamp
from patwarden.sinks.spec import SinkContext, SinkSpec, parse_spec

logger = logging.getLogger(__name__)

FileFormat = Literal["raw", "env", "json", "git_credentials"]
PREVIOUS_SUFFIX = ".previous"
SIDECAR_SUFFIX = ".patwarden.json"
UNMANAGED_REF = "unmanaged"  # a file that was there before patwarden managed it
STALE_TEMP_AGE = 300.0  # seconds: a temp file this old is left by a killed write, not a live one
_HOST = re.compile(r"^[A-Za-z0-9.-]+(:\d{1,5})?$")


class FileSinkSpec(SinkSpec):
    """Config keys of the ``file`` sink."""

    kind: Literal["file"] = "file"
    path: Path = Field(examples=["/etc/flux/azure-devops-pat"])
    format: FileFormat = "raw"
    variable: str = Field(default="AZURE_DEVOPS_EXT_PAT", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    host: str | None = Field(default=None, examples=["dev.azure.com"])
    username: str = Field(default="patwarden", pattern=r"^[^:@/\s]+$")

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        value = value.expanduser()
        if not value.is_absolute():
            raise ValueError("must be an absolute path (the service's working directory varies)")
        return value

    @field_validator("host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        if value is not None and not _HOST.match(value):
            raise ValueError("must be a host name, optionally with :port (no scheme or path)")
        return value

    @model_validator(mode="after")
    def _host_for_git(self) -> FileSinkSpec:
        if self.format == "git_credentials" and self.host is None:
            raise ValueError("format git_credentials needs `host` (e.g. dev.azure.com)")
        return self

    def target(self, organization: str | None) -> tuple[str, ...]:
        """The file's path."""
        return (self.kind, str(self.path))


@dataclass(frozen=True, kw_only=True)
class FileSink:
    """Writes the PAT to a local file. See the module docstring for formats and side files."""

    spec_model: ClassVar[type[FileSinkSpec]] = FileSinkSpec
    spec: FileSinkSpec

    @classmethod
    def from_spec(cls, spec: FileSinkSpec | Mapping[str, Any], context: SinkContext) -> FileSink:
        """Build the sink from its config entry (the context is not needed for files).

        Raises:
            SinkConfigError: the entry is invalid.
        """
        return cls(spec=parse_spec(FileSinkSpec, spec))

    @property
    def path(self) -> Path:
        """The file consumers read."""
        return self.spec.path

    @property
    def previous_path(self) -> Path:
        """Where the content before the last write is kept (0600)."""
        return self.path.with_name(self.path.name + PREVIOUS_SUFFIX)

    @property
    def sidecar_path(self) -> Path:
        """Where the version metadata (no secret) is kept."""
        return self.path.with_name(self.path.name + SIDECAR_SUFFIX)

    def describe(self) -> str:
        """Return ``file <path> (<format>)``."""
        return f"file {self.path} ({self.spec.format})"

    # --- writing ---------------------------------------------------------------------------

    def write(self, secret: Secret, meta: SinkWriteMeta) -> SinkVersion:
        """Replace the file with *secret* rendered in the configured format; keep the old one.

        Raises:
            SinkRefused: unsafe directory, a symlink or non-regular file at one of the paths, or
                a value that cannot be stored in this format. Nothing was changed.
            SinkUnavailable: the files could not be read or written. The file was not changed.
        """
        content = self._render(secret, meta)
        safe_files.check_directory(self.path.parent)
        for path in (self.path, self.previous_path, self.sidecar_path):
            safe_files.check_not_symlink(path)
            # A run killed mid-write left its temp copy (with a PAT) behind: clear it now.
            safe_files.remove_stale_temps(path.parent, path.name)
        sidecar = self._read_sidecar()
        old_content = safe_files.read_file(self.path)
        record = _Record(
            ref=uuid.uuid4().hex,
            authorization_id=meta.authorization_id,
            operation_id=meta.operation_id,
            token_name=meta.token_name,
            valid_to=meta.valid_to.isoformat(),
        )
        previous = None
        if old_content is not None:
            held = sidecar.holding(_inode(self.path)) if sidecar else None
            previous = (held or _Record(ref=UNMANAGED_REF)).at(_inode(self.path))
        self._replace_keeping_previous(content, old_content, record, previous)
        return record.version()

    def _render(self, secret: Secret, meta: SinkWriteMeta) -> bytes:
        value = secret.reveal()
        if not value or any(char in value for char in "\r\n\0"):
            raise SinkRefused(
                f"Refusing to write to {self.path}: the value is empty or contains a line break "
                "or NUL, which no PAT does.",
                hint="This is a bug in the PAT source; report it.",
            )
        spec = self.spec
        if spec.format == "raw":
            return value.encode()
        if spec.format == "env":
            return f"{spec.variable}={value}\n".encode()
        if spec.format == "json":
            body = {
                "token": value,
                "authorization_id": meta.authorization_id,
                "valid_to": meta.valid_to.isoformat(),
                "token_name": meta.token_name,
            }
            return (json.dumps(body, indent=2) + "\n").encode()
        return f"https://{spec.username}:{quote(value, safe='')}@{spec.host}\n".encode()

    def _replace_keeping_previous(
        self, content: bytes, old_content: bytes | None, record: _Record, previous: _Record | None
    ) -> None:
        """Keep the old content, record the write, then replace the file: crash-safe in order.

        A process killed at any point leaves the sidecar naming what the file holds: the new
        version's inode is recorded before the file is replaced, the old one's beside it.
        """
        directory = self.path.parent
        temp: Path | None = None
        try:
            temp = safe_files.write_temp(directory, self.path.name, content)
            kept_inode, kept_stamp = None, None
            if old_content is not None:
                kept = safe_files.write_temp(directory, self.previous_path.name, old_content)
                safe_files.replace(kept, self.previous_path)
                kept_inode, kept_stamp = _inode(self.previous_path), _stamp(self.previous_path)
            sidecar = _Sidecar(record.at(_inode(temp)), previous, kept_inode, kept_stamp)
            safe_files.write_atomic(self.sidecar_path, sidecar.dump())
            safe_files.replace(temp, self.path)
        except OSError as err:
            if temp is not None:
                temp.unlink(missing_ok=True)
            raise SinkUnavailable(
                f"Could not write {self.path}: {err.strerror}. The file was not changed.",
                hint="Check the directory's owner, permissions and free space.",
            ) from None

    # --- reading ---------------------------------------------------------------------------

    def read_back(self) -> Secret:
        """Return the value the file holds now, parsed according to its format.

        Raises:
            SinkReadFailed: the file is missing or not in the configured format.
            SinkRefused: a symlink or non-regular file is at the path.
            SinkUnavailable: the file could not be read.
        """
        content = safe_files.read_file(self.path)
        if content is None:
            raise SinkReadFailed(
                f"Cannot read back {self.path}: the file does not exist.",
                hint="Something removed it after patwarden wrote it; run the rotation again.",
            )
        value = self._parse(content)
        if value is None:
            raise SinkReadFailed(
                f"Cannot read back {self.path}: its content is not in the {self.spec.format} "
                "format this sink writes.",
                hint="Another program may have rewritten the file; check who else writes it.",
            )
        return Secret(value)

    def _parse(self, content: bytes) -> str | None:
        try:
            text = content.decode()
        except UnicodeDecodeError:
            return None
        spec = self.spec
        if spec.format == "raw":
            return text.rstrip("\r\n") or None
        if spec.format == "env":
            prefix = f"{spec.variable}="
            lines = [line for line in text.splitlines() if line.startswith(prefix)]
            return (lines[-1][len(prefix) :] or None) if lines else None
        if spec.format == "json":
            try:
                token = json.loads(text).get("token")
            except (ValueError, AttributeError):
                return None
            return token if isinstance(token, str) and token else None
        parts = urlsplit(text.strip())
        return unquote(parts.password) if parts.password else None

    def current_version(self) -> SinkVersion | None:
        """Return the version recorded in the sidecar, or ``unmanaged`` for a foreign file.

        Raises:
            SinkReadFailed: the sidecar exists but is not readable JSON of the expected shape.
            SinkRefused: a symlink or non-regular file is at one of the paths.
        """
        if not safe_files.check_not_symlink(self.path):
            return None
        for path in (self.path, self.previous_path, self.sidecar_path):
            # Every run reads versions: clear what a killed write left, unless it may be live.
            safe_files.remove_stale_temps(path.parent, path.name, older_than=STALE_TEMP_AGE)
        sidecar = self._read_sidecar()
        held = sidecar.holding(_inode(self.path)) if sidecar else None
        return (held or _Record(ref=UNMANAGED_REF)).version()

    def _read_sidecar(self) -> _Sidecar | None:
        raw = safe_files.read_file(self.sidecar_path)
        if raw is None:
            return None
        try:
            body = json.loads(raw)
            if not isinstance(body, dict) or body.get("format") != _SIDECAR_FORMAT:
                raise ValueError(f"expected an object with format {_SIDECAR_FORMAT}")
            kept = body.get("kept_inode")
            if kept is not None and (not isinstance(kept, int) or isinstance(kept, bool)):
                raise ValueError("`kept_inode` must be a number")
            stamp = body.get("kept_stamp")
            if stamp is not None and not (
                isinstance(stamp, list)
                and len(stamp) == 2
                and all(isinstance(n, int) and not isinstance(n, bool) for n in stamp)
            ):
                raise ValueError("`kept_stamp` must be two numbers")
            return _Sidecar(
                _Record.parse(body.get("current")),
                _Record.parse(body.get("previous")),
                kept,
                None if stamp is None else (stamp[0], stamp[1]),
            )
        except ValueError as err:
            raise SinkReadFailed(
                f"The metadata file {self.sidecar_path} is damaged ({err}).",
                hint=f"Delete {self.sidecar_path}; the next rotation recreates it (the file "
                "will count as unmanaged until then).",
                docs=SINKS_DOCS,
            ) from None

    # --- rollback --------------------------------------------------------------------------

    def restore(self, previous: SinkVersion | None) -> bool:
        """Put back the content kept in ``<path>.previous`` if it is *previous*.

        With *previous* None (the file did not exist before our write) the file and its sidecar
        are removed. Returns False, without raising, when the kept copy is not *previous* or the
        files cannot be changed.
        """
        try:
            return self._restore(previous)
        except (SinkError, OSError) as err:
            logger.warning("could not restore %s: %s", self.path, err)
            return False

    def _restore(self, previous: SinkVersion | None) -> bool:
        safe_files.check_directory(self.path.parent)
        for path in (self.path, self.previous_path, self.sidecar_path):
            safe_files.check_not_symlink(path)
            safe_files.remove_stale_temps(path.parent, path.name)
        sidecar = self._read_sidecar()
        if previous is None:
            self.path.unlink(missing_ok=True)
            self.sidecar_path.unlink(missing_ok=True)
            safe_files.fsync_directory(self.path.parent)
            return True
        if sidecar is None:
            return previous.ref == UNMANAGED_REF and self.path.exists()
        held = sidecar.holding(_inode(self.path))
        if held is not None and held.ref == previous.ref:
            return True
        kept = sidecar.previous
        if kept is None or kept.ref != previous.ref or not self.previous_path.exists():
            return False
        if sidecar.kept_inode is not None and _inode(self.previous_path) != sidecar.kept_inode:
            return False  # <path>.previous is not the copy of that version
        if sidecar.kept_stamp is not None and _stamp(self.previous_path) != sidecar.kept_stamp:
            return False  # a later file that was given the same (freed) inode number
        os.replace(self.previous_path, self.path)
        safe_files.fsync_directory(self.path.parent)
        restored = _Sidecar(kept.at(_inode(self.path)), None)
        safe_files.write_atomic(self.sidecar_path, restored.dump())
        return True
