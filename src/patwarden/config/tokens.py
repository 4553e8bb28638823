"""The ``tokens:`` and ``rotation:`` sections of the config file: the managed tokens' model.

Each entry under ``tokens`` names one managed token: which organization and scopes its PATs get,
how long they live, when they rotate, how long the previous PAT stays valid, where the new value
goes (``sinks``) and who is told (``on_rotate``). The models here check shapes and units; the
rules that relate several keys or other sections (scopes against the known list, ``app_token``,
``rotate_before`` shorter than ``lifetime``, organizations and identities that exist, sink entries,
hooks) are in :mod:`patwarden.config.token_checks`, which reports each with its key path and a fix.

This module must not import :mod:`patwarden.config.schema` (which imports it), so it has its own
small duration types.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from patwarden.domain.durations import DurationError, parse_duration
from patwarden.domain.scopes import ENTRA_ONLY_SCOPES, FULL_ACCESS_SCOPE, KNOWN_PAT_SCOPES

__all__ = [
    "DEFAULT_CONCURRENCY",
    "ENTRA_ONLY_SCOPES",
    "FULL_ACCESS_SCOPE",
    "KNOWN_PAT_SCOPES",
    "MAX_CONCURRENCY",
    "MAX_LIFETIME",
    "TOKEN_NAME_PATTERN",
    "RotationSettings",
    "TokenConfig",
]

DEFAULT_CONCURRENCY = 64  # rotation.concurrency: tokens rotated at once by `patwarden rotate`
MAX_CONCURRENCY = 256

# What a PAT display-name marker can carry (a pattern, not a password).
TOKEN_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"  # noqa: S105
MAX_LIFETIME = timedelta(days=365)  # the longest expiry Azure DevOps accepts (contract §7.2)
_DURATION_SCHEMA = {"type": "string", "pattern": r"^(\d+[wdhms])+$", "examples": ["30d", "12h"]}


def _duration(value: Any, *, allow_zero: bool) -> Any:
    if isinstance(value, timedelta):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = parse_duration(value)
        except DurationError:
            raise PydanticCustomError("duration", "is not a duration") from None
    else:
        raise PydanticCustomError("duration", "must be a duration string")
    if parsed < timedelta() or (parsed == timedelta() and not allow_zero):
        raise PydanticCustomError(
            "duration", "must not be negative" if allow_zero else "must be longer than zero"
        )
    return parsed


PositiveDuration = Annotated[
    timedelta,
    BeforeValidator(lambda value: _duration(value, allow_zero=False)),
    WithJsonSchema(_DURATION_SCHEMA),
]
NonNegativeDuration = Annotated[
    timedelta,
    BeforeValidator(lambda value: _duration(value, allow_zero=True)),
    WithJsonSchema({**_DURATION_SCHEMA, "examples": ["1d", "0s"]}),
]


def _sink_entry(value: Any) -> Any:
    if not isinstance(value, dict):
        raise PydanticCustomError("sink_entry", "must be a mapping such as {kind: key_vault, ...}")
    if not isinstance(value.get("kind"), str) or not value["kind"]:
        raise PydanticCustomError("sink_entry", "needs a kind (key_vault, variable_group, ...)")
    return value


# A sink entry stays a mapping: its keys belong to its sink kind (built-in or plugin) and are
# checked by patwarden.config.token_checks against the model the kind declares (sinks.registry).
SinkEntry = Annotated[
    dict[str, Any],
    BeforeValidator(_sink_entry),
    WithJsonSchema(
        {
            "type": "object",
            "required": ["kind"],
            "properties": {
                "kind": {
                    "type": "string",
                    "examples": ["key_vault", "variable_group", "service_connection", "file"],
                },
                "identity": {"type": "string"},
            },
            "description": "One sink; its keys depend on its kind (see docs/sinks.md).",
        }
    ),
]
_REF_SCHEMA = {
    "oneOf": [
        {"type": "string", "pattern": "^https://"},
        {
            "type": "object",
            "properties": {"env": {"type": "string"}},
            "required": ["env"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {"file": {"type": "string"}},
            "required": ["file"],
            "additionalProperties": False,
        },
    ]
}
# Validated by patwarden.config.hooks.HookSpec (token_checks reports its problems); kept the
# mapping as written here, and built into a HookSpec for the engine by patwarden.app.specs.
HookEntry = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "command": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "webhook": _REF_SCHEMA,
                "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600},
                "pass_env": {"type": "array", "items": {"type": "string"}},
            },
            "description": "Run a command and/or post a webhook after each rotation.",
        }
    ),
]


def _default(value: timedelta, text: str) -> Any:
    """A duration default, shown in the JSON Schema as people write it (not ISO 8601)."""
    return Field(default=value, json_schema_extra={"default": text})


class _Model(BaseModel):
    """Frozen and strict about keys: a misspelt key is an error, never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TokenConfig(_Model):
    """One managed token (``tokens.<name>``). Names: letters, digits, ``.``, ``_``, ``-``."""

    organization: str | None = Field(default=None, examples=["contoso"])
    rotator: str | None = Field(default=None, examples=["rotator"])
    scopes: tuple[str, ...] = Field(min_length=1, examples=[["vso.code"]])
    allow_full_access: bool = False
    lifetime: PositiveDuration = Field(examples=["30d"])
    rotate_before: PositiveDuration = _default(timedelta(days=7), "7d")
    revoke_after: NonNegativeDuration = _default(timedelta(days=1), "1d")
    jitter: NonNegativeDuration = _default(timedelta(), "0s")
    sinks: tuple[SinkEntry, ...] = ()
    on_rotate: HookEntry | None = None
    all_orgs: bool = False


class RotationSettings(_Model):
    """How ``rotate`` runs a fleet of tokens (``rotation:``)."""

    # A rotation waits on ~7 requests in turn; at Azure's 40-100 ms each, 64 workers keep the
    # client busy without queueing (docs/performance.md, "Fleet rotation").
    concurrency: int = Field(default=DEFAULT_CONCURRENCY, ge=1, le=MAX_CONCURRENCY)
    lock_timeout: PositiveDuration = _default(timedelta(minutes=5), "5m")
    orphan_margin: PositiveDuration = _default(timedelta(hours=1), "1h")
