"""The ``env_file`` sink: the PAT as one ``NAME=value`` line of a dotenv file.

Other lines of the file are kept. Beside the value, a comment line records the version patwarden
wrote (``# patwarden:NAME ref=... authorization_id=...``; never the value), and the file as it was
before the last write is kept as ``<path>.previous`` so that :meth:`EnvFileSink.restore` can put
it back. Every write replaces the file atomically with mode 0600.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from patwarden.plugins import (
    Secret,
    SinkContext,
    SinkReadFailed,
    SinkSpec,
    SinkUnavailable,
    SinkVersion,
    SinkWriteMeta,
    parse_spec,
)
from pydantic import Field, field_validator

__all__ = ["EnvFileSink", "EnvFileSinkSpec"]

PREVIOUS_SUFFIX = ".previous"
_MARKER = "# patwarden:"


class EnvFileSinkSpec(SinkSpec):
    """Config keys of the ``env_file`` sink."""

    kind: Literal["env_file"] = "env_file"
    path: Path = Field(examples=["/etc/flux/azure-devops.env"])
    variable: str = Field(default="AZURE_DEVOPS_EXT_PAT", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        value = value.expanduser()
        if not value.is_absolute():
            raise ValueError("must be an absolute path (the service's working directory varies)")
        return value

    def target(self, organization: str | None) -> tuple[str, ...]:
        """One variable of one file: two entries writing it would overwrite each other."""
        return (self.kind, str(self.path), self.variable)


@dataclass(frozen=True, kw_only=True)
class EnvFileSink:
    """Writes the PAT into one variable of a dotenv file (see the module docstring)."""

    spec_model: ClassVar[type[EnvFileSinkSpec]] = EnvFileSinkSpec
    spec: EnvFileSinkSpec

    @classmethod
    def from_spec(
        cls, spec: EnvFileSinkSpec | Mapping[str, Any], context: SinkContext
    ) -> EnvFileSink:
        """Build the sink (the context is not needed for a local file).

        Raises:
            SinkConfigError: the entry is invalid.
        """
        return cls(spec=parse_spec(EnvFileSinkSpec, spec))

    @property
    def previous_path(self) -> Path:
        """Where the file as it was before the last write is kept."""
        return self.spec.path.with_name(self.spec.path.name + PREVIOUS_SUFFIX)

    def describe(self) -> str:
        """Return ``env_file <path>:<variable>``."""
        return f"env_file {self.spec.path}:{self.spec.variable}"

    def write(self, secret: Secret, meta: SinkWriteMeta) -> SinkVersion:
        """Set the variable to *secret* and record the version; keep the old file as previous.

        Raises:
            SinkUnavailable: the file could not be written (nothing was changed).
        """
        version = SinkVersion(ref=uuid.uuid4().hex, authorization_id=meta.authorization_id)
        lines = [line for line in self._lines(self.spec.path) if not self._owns(line)]
        lines += [self._marker(version), f"{self.spec.variable}={secret.reveal()}"]
        try:
            if self.spec.path.exists():
                self._replace(self.previous_path, self.spec.path.read_text())
            self._replace(self.spec.path, "".join(f"{line}\n" for line in lines))
        except OSError as err:
            raise SinkUnavailable(
                f"Cannot write {self.describe()}: {err.strerror}.",
                hint="Check that the folder exists and this user may write to it.",
            ) from None
        return version

    def read_back(self) -> Secret | None:
        """Return the variable's value, or None if the file does not set it.

        Raises:
            SinkReadFailed: the file exists but could not be read.
        """
        prefix = f"{self.spec.variable}="
        for line in self._lines(self.spec.path):
            if line.startswith(prefix):
                return Secret(line.removeprefix(prefix))
        return None

    def current_version(self) -> SinkVersion | None:
        """Return the version recorded in the file, or None if patwarden never wrote it.

        Raises:
            SinkReadFailed: the file exists but could not be read.
        """
        return self._version_in(self.spec.path)

    def restore(self, previous: SinkVersion | None) -> bool:
        """Make *previous* current again if it is current or kept as ``<path>.previous``.

        Raises:
            SinkUnavailable: the kept file could not be moved back.
        """
        if previous is None:
            return False
        if self.current_version() == previous:
            return True
        if self._version_in(self.previous_path) != previous:
            return False
        try:
            os.replace(self.previous_path, self.spec.path)
        except OSError as err:
            raise SinkUnavailable(f"Cannot restore {self.describe()}: {err.strerror}.") from None
        return True

    # --- the file --------------------------------------------------------------------------------

    def _owns(self, line: str) -> bool:
        return line.startswith((f"{self.spec.variable}=", f"{_MARKER}{self.spec.variable} "))

    def _marker(self, version: SinkVersion) -> str:
        return (
            f"{_MARKER}{self.spec.variable} ref={version.ref} "
            f"authorization_id={version.authorization_id or ''}"
        )

    def _version_in(self, path: Path) -> SinkVersion | None:
        head = f"{_MARKER}{self.spec.variable} "
        for line in self._lines(path):
            if line.startswith(head):
                fields = dict(
                    part.split("=", 1) for part in line[len(head) :].split() if "=" in part
                )
                return SinkVersion(
                    ref=fields.get("ref", ""),
                    authorization_id=fields.get("authorization_id") or None,
                )
        return None

    def _lines(self, path: Path) -> list[str]:
        try:
            return path.read_text().splitlines()
        except FileNotFoundError:
            return []
        except OSError as err:
            raise SinkReadFailed(f"Cannot read {path}: {err.strerror}.") from None

    @staticmethod
    def _replace(path: Path, text: str) -> None:
        """Write *text* to a 0600 temporary file beside *path*, then rename it over *path*."""
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
