"""The error tree: one root, a few subclasses grouped by what the caller does next.

Every message says what failed, on which object, the likely cause and the next action.
Secrets never appear in messages: callers pass identifiers (token names, authorization ids,
vault/secret names), never values. ``exit_code`` is what the CLI exits with.
"""

from __future__ import annotations

DOCS = "https://github.com/patwarden/patwarden/blob/main/docs"


class PatwardenError(Exception):
    """Root of every error patwarden raises on purpose. The CLI prints ``str(err)`` and exits."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None, docs: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.docs = docs

    def __str__(self) -> str:
        parts = [self.message]
        if self.hint:
            parts.append(f"Fix: {self.hint}")
        if self.docs:
            parts.append(f"See: {self.docs}")
        return "\n".join(parts)


class ConfigError(PatwardenError):
    """The configuration or a command-line argument is invalid. Nothing was changed."""

    exit_code = 2


class AuthError(PatwardenError):
    """An identity could not get a token, or is not allowed to do what was asked."""

    exit_code = 3


class ReloginRequired(AuthError):
    """The rotator's refresh token can no longer be used silently; a human must run `login`."""


class AzureDevOpsError(PatwardenError):
    """Azure DevOps refused or failed a request (PAT API, Token Admin, variable groups, …)."""

    exit_code = 4


class SinkError(PatwardenError):
    """A sink could not be written or read back."""

    exit_code = 5


class StateError(PatwardenError):
    """The state store is corrupt, locked by another run, or from a newer version."""

    exit_code = 6


class EmulatorError(PatwardenError):
    """The emulator could not start or was asked for something it cannot do."""

    exit_code = 7


def describe_error(exc: Exception) -> str:
    """Return a secret-free description of ``exc``: our messages, or only the type of others
    (whose text may quote a response body); the traceback goes to the debug log."""
    if isinstance(exc, PatwardenError):
        return exc.message
    import logging  # not at import time: `patwarden COMMAND --help` configures no logging

    logging.getLogger(__name__).debug("unexpected error from a port", exc_info=exc)
    return f"unexpected {type(exc).__name__} (run with --debug for details)"
