"""Leak scanning: every secret the emulator issued, searched for in everything patwarden produced.

A :class:`LeakScanner` collects texts (stdout, stderr, log records, exception messages) and
directories (config, state, sinks) during a test. :meth:`LeakScanner.leaks` fetches every PAT,
access token and refresh token the emulator issued since its last reset
(``GET /_admin/issued-secrets``), adds the secrets the test itself knows (a client secret, a cache
key), and searches each text and each file for each secret in the forms it could leak in: as is,
inside a Basic ``Authorization`` header, and URL-quoted. Only the sink files (and the encrypted
token cache, which holds no plaintext anyway) may hold a secret; every file that does must be 0600.

A :class:`Leak` names the kind of secret, the form and where it was found, never the value.
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from tests.conftest import RunningEmulator

MIN_SECRET_LENGTH = 16  # shorter values (a test's "x") would match by accident
MAX_FILE_BYTES = 8 << 20


@dataclass(frozen=True)
class Leak:
    """One secret found where it must not be (the value itself is never kept here)."""

    kind: str
    form: str
    where: str

    def __str__(self) -> str:
        return f"a {self.kind} ({self.form}) in {self.where}"


def _forms(value: str) -> Iterator[tuple[str, str]]:
    """The spellings under which ``value`` could leak."""
    yield "plain", value
    yield "basic-auth", base64.b64encode(b":" + value.encode()).decode()
    quoted = quote(value, safe="")
    if quoted != value:
        yield "url-quoted", quoted


@dataclass
class LeakScanner:
    """Collects outputs and files of one test and finds the secrets in them."""

    emulator: RunningEmulator | None = None
    known: list[tuple[str, str]] = field(default_factory=list)
    texts: list[tuple[str, str]] = field(default_factory=list)
    roots: list[Path] = field(default_factory=list)
    allowed: set[Path] = field(default_factory=set)
    files_scanned: int = 0
    secrets_checked: int = 0

    def remember(self, kind: str, value: str) -> None:
        """Also look for ``value`` (a secret the emulator did not issue: a client secret, a key)."""
        self.known.append((kind, value))

    def capture(self, where: str, text: str | bytes | None) -> None:
        """Scan ``text`` (an output, a log, an exception message) at the end of the test."""
        if text is None:
            return
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        self.texts.append((where, text))

    def watch(self, root: Path) -> None:
        """Scan every file under ``root`` at the end of the test."""
        self.roots.append(root)

    def allow(self, *paths: Path) -> None:
        """``paths`` may hold a secret (a sink file and its kept previous version)."""
        for path in paths:
            self.allowed.add(path.resolve())

    def secrets(self) -> list[tuple[str, str]]:
        """Every secret to look for: issued by the emulator since its reset, and remembered."""
        found = list(self.known)
        if self.emulator is not None:
            issued = self.emulator.admin("GET", "/issued-secrets").json()["secrets"]
            found += [(str(item["kind"]), str(item["value"])) for item in issued]
        return [(kind, value) for kind, value in found if len(value) >= MIN_SECRET_LENGTH]

    def files(self) -> Iterator[Path]:
        """Every regular file under the watched roots (symlinks are not followed)."""
        for root in self.roots:
            if root.is_file():
                yield root
                continue
            for directory, _dirs, names in os.walk(root):
                for name in names:
                    path = Path(directory, name)
                    if stat.S_ISREG(os.lstat(path).st_mode):
                        yield path

    def leaks(self, secrets: Iterable[tuple[str, str]] | None = None) -> list[Leak]:
        """Return every secret found in a captured text or a file where it must not be.

        Files that may hold a secret (``allow``) must be 0600 instead; a looser one is a leak too.
        """
        wanted = [
            (kind, form, spelled)
            for kind, value in (self.secrets() if secrets is None else secrets)
            for form, spelled in _forms(value)
        ]
        self.secrets_checked = len({spelled for _, form, spelled in wanted if form == "plain"})
        found: list[Leak] = []
        for where, text in self.texts:
            found += [Leak(k, f, where) for k, f, s in wanted if s in text]
        for path in self.files():
            self.files_scanned += 1
            with path.open("rb") as handle:
                data = handle.read(MAX_FILE_BYTES).decode("utf-8", "replace")
            hits = [Leak(k, f, f"file {path}") for k, f, s in wanted if s in data]
            if not hits:
                continue
            if path.resolve() not in self.allowed:
                found += hits
            elif stat.S_IMODE(os.lstat(path).st_mode) != 0o600:
                mode = stat.S_IMODE(os.lstat(path).st_mode)
                found.append(Leak(hits[0].kind, f"file mode {mode:04o}", f"file {path}"))
        return found

    def assert_clean(self) -> None:
        """Fail the test if anything leaked; the message names kinds and places, not values."""
        found = self.leaks()
        assert not found, "secrets leaked: " + "; ".join(sorted({str(leak) for leak in found}))
