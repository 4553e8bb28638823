"""What ``patwarden status`` reads from the config, kept so that the next ``status`` need not
load it.

Loading the config — YAML, then pydantic building and running the validators of some thirty
models — is more than half of what ``status`` costs (docs/performance.md#start-up), and ``status``
reads little of it: each token's schedule, organization and rotator, where the SQLite state is,
and each rotator's sign-in settings and token-cache file.
:class:`~patwarden.app.status_inputs.StatusInputs` holds exactly that, as plain values, derived
from a validated config in one place (``StatusInputs.of``, through the same functions ``rotate``
uses: :func:`~patwarden.app.specs.token_specs`,
:func:`~patwarden.identity.credential_set.user_settings`,
:func:`~patwarden.identity.credential_set.file_cache`). ``status`` saves it after loading the config
and, while the config file is unchanged, reads it back instead (:func:`status_view`).

Where: ``$XDG_CACHE_HOME/patwarden/status/`` (default ``~/.cache/patwarden/status/``), one file
per config path, 0600 in a 0700 directory that patwarden refuses when another user owns it or may
write it. A snapshot is used only while the config file's bytes hash to the recorded SHA-256 and
its resolved directory, the home directory, patwarden's version, the modules that derive the
snapshot and the snapshot's format are those recorded. Anything else — another or an edited
config, a damaged, foreign or older snapshot — is a miss: ``status`` loads the config, as it
always did, and saves a new snapshot. No secret is kept: names, paths, durations and where a cache
key is read from (a variable's name, a file's path), never a value.

What a snapshot cannot hold — a PostgreSQL or Blob state, a rotator whose cache or cache key is in
Key Vault (reading either needs another identity's credential) — ``status`` reads through the
:class:`~patwarden.app.context.AppContext`, which loads the config.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import patwarden
from patwarden.app.specs import check_names
from patwarden.app.status_inputs import StatusInputs, decode, encode
from patwarden.config.location import read_config_bytes, resolve_config_path
from patwarden.config.permissions import warn_if_readable_by_others
from patwarden.errors import PatwardenError
from patwarden.identity.user import UserCredential

if TYPE_CHECKING:
    from patwarden.app.context import AppContext
    from patwarden.domain.models import TokenSpec

__all__ = ["FORMAT", "StatusView", "load", "save", "snapshot_file", "status_view"]

log = logging.getLogger(__name__)
FORMAT = 1  # raise it whenever what is stored, or how, changes
MAX_SNAPSHOT_BYTES = 64 << 20  # about 300 bytes a token: far beyond any config's snapshot
# The modules that turn a config into a snapshot: a checkout whose code changed since the
# snapshot was taken (same version, new defaults) must not read it back.
_DERIVED_BY = (
    "config",
    "app/snapshot.py",
    "app/specs.py",
    "app/status_inputs.py",
    "identity/cache_keys.py",
    "identity/credential_set.py",
    "identity/file_cache.py",
)


class StatusView:
    """What ``status`` reads, from :class:`StatusInputs`; what they do not hold (another state
    backend, a rotator whose cache is in Key Vault) comes from *app*, which loads the config."""

    def __init__(self, inputs: StatusInputs, app: AppContext) -> None:
        self.inputs = inputs
        self.app = app

    @property
    def default_rotator(self) -> str:
        """The config's ``rotator``."""
        return self.inputs.default_rotator

    def specs(self, names: Collection[str] = ()) -> list[TokenSpec]:
        """The configured tokens (all, or those in *names*), in config order.

        Raises:
            ConfigError: a name is not a configured token.
        """
        check_names(names, self.inputs.rotators, self.inputs.source)
        return [spec for spec in self.inputs.specs if not names or spec.name in names]

    def rotator_for(self, token_name: str) -> str:
        """The identity that creates and revokes the PATs of *token_name*."""
        return self.inputs.rotators.get(token_name) or self.inputs.default_rotator

    def open_store(self) -> Any:
        """Open a store of the configured state (the caller closes it).

        Raises:
            StateError: the state cannot be opened, is damaged, or is from a newer patwarden.
        """
        if self.inputs.sqlite is None:
            return self.app.state_store()
        from patwarden.app.state_backends import SqliteBackend

        return SqliteBackend(self.inputs.sqlite, self.app.clock).open()

    def user(self, name: str) -> UserCredential:
        """The credential of user identity *name* (for its account record; it signs nothing in).

        Raises:
            ConfigError: no such identity, or it is not of kind user.
        """
        found = self.inputs.users.get(name)
        if found is None:
            return self.app.credentials.user(name)
        settings, cache = found
        return UserCredential(settings=settings, open_store=cache.open, clock=self.app.clock.now)


def status_view(app: AppContext) -> StatusView:
    """What ``status`` reads: the snapshot of an unchanged config, else the config loaded (and
    its snapshot saved for the next ``status``).

    Raises:
        ConfigError: the config cannot be read or is invalid (exit 2, every problem listed).
    """
    if not app.config_loaded:
        path = resolve_config_path(app.config_path)
        inputs = load(path)
        if inputs is not None:
            log.debug("status reads the snapshot of %s", inputs.source)
            warn_if_readable_by_others(path, what="config file")
            for secret_file in inputs.secret_files:
                warn_if_readable_by_others(secret_file, what="secret file")
            return StatusView(inputs, app)
    inputs = StatusInputs.of(app.config)
    save(inputs)
    return StatusView(inputs, app)


# --- where and how a snapshot is kept -------------------------------------------------------------


def snapshot_file(config: Path) -> Path | None:
    """Where the snapshot of the config file *config* is kept (None: this user has no home and
    no ``XDG_CACHE_HOME``, so nowhere)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        home = os.path.expanduser("~")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".cache")
    name = hashlib.sha256(os.fsencode(config.absolute())).hexdigest()[:32]
    return Path(base, "patwarden", "status", f"{name}.json")


def load(config: Path) -> StatusInputs | None:
    """The snapshot of *config* if one is kept and still valid, else None (never raises)."""
    try:
        where = snapshot_file(config)
        if where is None:
            return None
        data = read_config_bytes(config)
        kept = _read_private(where)
        if kept is None:
            return None
        document = json.loads(kept)
        if document.get("key") != _key(config, hashlib.sha256(data).hexdigest()):
            return None
        return decode(document["inputs"])
    except (PatwardenError, OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        log.debug("no usable snapshot of %s: %s", config, type(err).__name__)
        return None


def save(inputs: StatusInputs) -> None:
    """Keep *inputs* for the next ``status`` of the same config; a failure only costs that
    ``status`` the time of loading the config again (logged at debug level)."""
    from patwarden.sinks.safe_files import write_private_file

    if inputs.source is None or inputs.sha256 is None:
        return  # a config built in code: nothing to compare the next status's file with
    where = snapshot_file(inputs.source)
    if where is None:
        return
    document = {"key": _key(inputs.source, inputs.sha256), "inputs": encode(inputs)}
    try:
        write_private_file(
            where,
            json.dumps(document, separators=(",", ":")).encode(),
            purpose="status snapshot directory",
        )
    except (PatwardenError, OSError) as err:
        log.debug("the snapshot of %s was not saved: %s", inputs.source, err)


def _key(config: Path, sha256: str) -> dict[str, Any]:
    """What a snapshot is valid for (compared whole)."""
    return {
        "format": FORMAT,
        "version": patwarden.__version__,
        "code": _code_fingerprint(),
        "config": str(config.absolute()),
        "base_dir": os.path.realpath(config.absolute().parent),
        "home": os.path.expanduser("~"),
        "sha256": sha256,
    }


def _code_fingerprint() -> str:
    root = os.path.dirname(patwarden.__file__)
    stamps = []
    for name in _DERIVED_BY:
        path = os.path.join(root, name)
        if name.endswith(".py"):
            info = os.stat(path)
            stamps.append((name, info.st_mtime_ns, info.st_size))
            continue
        for entry in os.scandir(path):
            if entry.name.endswith(".py"):
                info = entry.stat()
                stamps.append((f"{name}/{entry.name}", info.st_mtime_ns, info.st_size))
    return hashlib.sha256(repr(sorted(stamps)).encode()).hexdigest()[:32]


def _read_private(path: Path) -> bytes | None:
    """The file's bytes when it is a regular file of ours that only we may write, else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if (
            not stat.S_ISREG(info.st_mode)
            or info.st_uid != os.geteuid()
            or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        ):
            return None
        data = handle.read(MAX_SNAPSHOT_BYTES + 1)
    return data if len(data) <= MAX_SNAPSHOT_BYTES else None
