"""The ``on_rotate`` entry of a token: which command to run and which webhook to post.

The config layer validates it (:mod:`patwarden.config.token_checks` reports its problems with
their key paths) and :mod:`patwarden.app.specs` builds it for the engine; running it is
:mod:`patwarden.hooks.runner`'s job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from patwarden.config.refs import EnvRef, FileRef
from patwarden.errors import ConfigError

__all__ = ["DEFAULT_TIMEOUT", "HOOKS_DOCS", "HookSpec", "is_https_url"]

HOOKS_DOCS = "https://github.com/patwarden/patwarden/blob/main/docs/sinks.md#hooks"
DEFAULT_TIMEOUT = 60.0


def is_https_url(url: str) -> bool:
    """Whether *url* is an ``https://`` URL with a host."""
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(parts.hostname)


class HookSpec(BaseModel):
    """The ``on_rotate`` entry of a token: a command (argv list), a webhook URL, or both."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: tuple[str, ...] | None = Field(default=None, examples=[["systemctl", "reload", "x"]])
    # The URL's path is a credential for Teams and Slack: prefer a reference ({env: NAME}).
    webhook: str | EnvRef | FileRef | None = Field(
        default=None, examples=[{"env": "TEAMS_WEBHOOK_URL"}, "https://hooks.example/patwarden"]
    )
    timeout: float = Field(default=DEFAULT_TIMEOUT, gt=0, le=3600)
    pass_env: tuple[str, ...] = ()

    @field_validator("command", mode="before")
    @classmethod
    def _argv(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError(
                "must be a list of arguments (no shell is used), e.g. [systemctl, reload, x]"
            )
        return value

    @field_validator("command")
    @classmethod
    def _not_empty(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and (not value or not value[0]):
            raise ValueError("must name a program to run")
        return value

    @field_validator("webhook")
    @classmethod
    def _https(cls, value: str | EnvRef | FileRef | None) -> str | EnvRef | FileRef | None:
        if isinstance(value, str) and not is_https_url(value):
            raise ValueError("must be an https:// URL (or {env: NAME} / {file: PATH} holding one)")
        return value

    @model_validator(mode="after")
    def _something(self) -> HookSpec:
        if self.command is None and self.webhook is None:
            raise ValueError("needs `command`, `webhook` or both")
        return self

    @classmethod
    def parse(cls, raw: Mapping[str, Any], *, where: str = "on_rotate") -> HookSpec:
        """Validate an ``on_rotate`` entry.

        Raises:
            ConfigError: listing every problem with its key path.
        """
        try:
            return cls.model_validate(dict(raw))
        except ValidationError as err:
            lines = []
            for problem in err.errors(include_url=False, include_input=False):
                path = ".".join(str(part) for part in problem["loc"])
                lines.append(
                    f"  {where}.{path}: {problem['msg']}"
                    if path
                    else f"  {where}: {problem['msg']}"
                )
            raise ConfigError(
                f"The hook at {where} is invalid:\n" + "\n".join(lines),
                hint="See the hooks section of docs/sinks.md.",
                docs=HOOKS_DOCS,
            ) from None
