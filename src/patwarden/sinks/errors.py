"""Errors a sink raises, grouped by what the rotation engine does next.

``SinkUnavailable`` and its subclass ``SinkRefused`` promise that *nothing was changed*: the engine
keeps the old PAT current, restores the sinks it already wrote and revokes the new PAT.
``SinkWriteFailed`` means the write may or may not have taken effect: the engine treats the
sink's content as unknown, calls ``restore()`` and never revokes the old PAT on that basis.
``SinkReadFailed`` means a read-back or version lookup could not answer; during verification the
engine treats it like a failed verification. Messages name the sink (vault/secret, group/variable,
endpoint, file path) and never carry a secret value.
"""

from __future__ import annotations

from patwarden.errors import ConfigError, SinkError

SINKS_DOCS = "https://github.com/patwarden/patwarden/blob/main/docs/sinks.md"


class SinkUnavailable(SinkError):
    """The sink could not be reached or was not allowed to be written. Nothing was changed."""


class SinkRefused(SinkUnavailable):
    """The sink refused to write because the target is unsafe or mis-shaped. Nothing was changed.

    Unlike a plain :class:`SinkUnavailable` a retry will not help: a human must fix the target
    (a planted symlink, a world-writable directory, a missing variable group, ...).
    """


class SinkWriteFailed(SinkError):
    """A write was attempted and failed part-way: the sink's content is now unknown."""


class SinkReadFailed(SinkError):
    """The value or the version metadata could not be read back from the sink."""


class SinkPluginError(SinkError):
    """A sink plugin could not be loaded, or does not provide what patwarden needs."""


class SinkConfigError(ConfigError):
    """A sink entry in the configuration is invalid (unknown kind, missing or misspelt key).

    ``problems`` holds ``(key path inside the entry, message)`` pairs; :meth:`at` re-anchors them
    to the entry's place in the file (``tokens.flux-git.sinks[0]``).
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str = "?",
        problems: tuple[tuple[str, str], ...] = (),
        hint: str | None = None,
        docs: str | None = SINKS_DOCS,
    ) -> None:
        super().__init__(message, hint=hint, docs=docs)
        self.kind = kind
        self.problems = problems

    @classmethod
    def for_entry(
        cls, *, kind: str, problems: tuple[tuple[str, str], ...], where: str = "sink"
    ) -> SinkConfigError:
        """Build the error for the entry at *where* from its problems."""
        lines = [
            f"  {where}.{path}: {msg}" if path else f"  {where}: {msg}" for path, msg in problems
        ]
        return cls(
            f"The {kind} sink at {where} is invalid:\n" + "\n".join(lines),
            kind=kind,
            problems=problems,
            hint="Fix the keys listed above; docs/sinks.md lists every key of every sink.",
        )

    def at(self, where: str) -> SinkConfigError:
        """Return the same error with key paths anchored at *where*."""
        if not self.problems:
            return self
        return self.for_entry(kind=self.kind, problems=self.problems, where=where)
