"""Rules for ``tokens:`` that relate keys or sections, each reported with a key path and a fix.

Run on the raw mapping (like :mod:`patwarden.config.references`) so they still report when a
schema error elsewhere stopped the model from being built: scopes against the known list,
``app_token`` only with ``allow_full_access``, never ``all_orgs``, ``rotate_before`` + ``jitter``
shorter than ``lifetime`` (else every new PAT would be due at once), lifetimes within a year,
organizations and identities that exist, each sink entry against its kind's own model, one token
per sink, and the ``on_rotate`` hook.

Sink entries are checked with what their kind declares, asked of :mod:`patwarden.sinks.registry`:
its spec model (keys and validators), the default of its ``identity`` key and its ``target``.
This module knows no sink kind by name.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from patwarden.config.hooks import HookSpec
from patwarden.config.problems import Problem
from patwarden.config.tokens import (
    ENTRA_ONLY_SCOPES,
    FULL_ACCESS_SCOPE,
    KNOWN_PAT_SCOPES,
    MAX_LIFETIME,
    TOKEN_NAME_PATTERN,
)
from patwarden.domain.durations import DurationError, format_duration, parse_duration
from patwarden.domain.marker import is_valid_token_name
from patwarden.errors import PatwardenError
from patwarden.sinks.registry import kind_names, load_sink_kind
from patwarden.sinks.spec import SinkSpec

if TYPE_CHECKING:
    from patwarden.config.schema import Config

__all__ = ["hook_secret_files", "token_problems"]

_SINK_DOCS = "docs/sinks.md"
_HOOK_DOCS = "docs/sinks.md#hooks-on_rotate"
_ROTATOR_KINDS = ("user", "legacy_password")
_DEFAULTS = {"rotate_before": timedelta(days=7), "jitter": timedelta()}


def token_problems(raw: Mapping[str, Any]) -> list[Problem]:
    """Every problem of the ``tokens`` section that the model alone cannot see."""
    tokens = raw.get("tokens")
    if not isinstance(tokens, dict):
        return []
    found = raw.get("identities")
    identities: Mapping[str, Any] = found if isinstance(found, dict) else {}
    orgs = _orgs(raw)
    problems: list[Problem] = []
    seen_sinks: dict[tuple[str, ...], str] = {}
    known = kind_names()
    for name, body in tokens.items():
        where = f"tokens.{name}"
        if not isinstance(name, str) or not is_valid_token_name(name):
            problems.append(
                Problem(
                    path=where,
                    message="is not a valid token name (it is carried in each PAT's display name)",
                    fix=f"use 1-100 letters, digits, '.', '_' or '-' ({TOKEN_NAME_PATTERN})",
                )
            )
        if not isinstance(body, dict):
            continue
        org = body.get("organization")
        problems += _org_problems(where, org, orgs)
        problems += _rotator_problems(where, body.get("rotator"), identities)
        problems += _scope_problems(where, body)
        problems += _schedule_problems(where, body)
        if body.get("all_orgs") is True:
            problems.append(
                Problem(
                    path=f"{where}.all_orgs",
                    message="global (all-organization) PATs are never created; they stop working "
                    "on 2026-12-01 and widen every leak",
                    fix="remove all_orgs and configure one token per organization",
                )
            )
        token_org = org if isinstance(org, str) else (orgs[0] if len(orgs) == 1 else None)
        problems += _sink_problems(
            where, body.get("sinks"), _Context(identities, token_org, seen_sinks, known, {})
        )
        problems += _hook_problems(where, body.get("on_rotate"))
    return problems


def hook_secret_files(config: Config) -> Iterator[Path]:
    """Every token's ``{file: PATH}`` webhook reference (warned about when others may read it)."""
    base = config.source.parent if config.source else Path.cwd()
    for token in config.tokens.values():
        webhook = (token.on_rotate or {}).get("webhook")
        if isinstance(webhook, dict) and isinstance(webhook.get("file"), str):
            path = Path(webhook["file"]).expanduser()
            yield path if path.is_absolute() else base / path


# --- one rule each -----------------------------------------------------------------------------


def _orgs(raw: Mapping[str, Any]) -> list[str]:
    several = raw.get("organizations")
    if isinstance(several, list):
        return [str(org) for org in several]
    return [str(raw["organization"])] if raw.get("organization") else []


def _org_problems(where: str, org: Any, orgs: Sequence[str]) -> list[Problem]:
    configured = "configured organizations: " + (", ".join(orgs) or "none")
    if org is None:
        if len(orgs) > 1:
            return [
                Problem(
                    path=f"{where}.organization",
                    message="required when the config lists several organizations",
                    fix=f"organization: {orgs[0]} ({configured})",
                )
            ]
        return []
    if orgs and org not in orgs:
        return [
            Problem(
                path=f"{where}.organization",
                message=f"{org!r} is not one of the configured organizations",
                fix=f"use one of them, or add it to organizations: ({configured})",
            )
        ]
    return []


def _rotator_problems(where: str, rotator: Any, identities: Mapping[str, Any]) -> list[Problem]:
    if not isinstance(rotator, str):
        return []  # absent, or not a name at all (the schema reports that)
    body = identities.get(rotator)
    if not isinstance(body, dict):
        return [
            Problem(
                path=f"{where}.rotator",
                message=f"no identity named {rotator!r}",
                fix=_names(identities),
            )
        ]
    if body.get("kind") not in _ROTATOR_KINDS:
        return [
            Problem(
                path=f"{where}.rotator",
                message=f"identity {rotator!r} is a {body.get('kind')}: only a user can create "
                "PATs (the PAT Lifecycle API refuses application tokens)",
                fix="point it at a kind: user identity signed in with `patwarden login`",
            )
        ]
    return []


def _scope_problems(where: str, body: Mapping[str, Any]) -> list[Problem]:
    scopes = body.get("scopes")
    if not isinstance(scopes, list):
        return []
    problems = []
    for index, scope in enumerate(scopes):
        path = f"{where}.scopes[{index}]"
        if not isinstance(scope, str):
            continue
        if scope in ENTRA_ONLY_SCOPES:
            problems.append(
                Problem(
                    path=path,
                    message=f"{scope} is an Entra permission, not a PAT scope",
                    fix="list the PAT scopes the consumer needs, e.g. vso.code",
                )
            )
        elif scope not in KNOWN_PAT_SCOPES:
            close = difflib.get_close_matches(scope, sorted(KNOWN_PAT_SCOPES), n=1, cutoff=0.6)
            problems.append(
                Problem(
                    path=path,
                    message=f"unknown PAT scope {scope!r}",
                    fix=f"did you mean {close[0]!r}?"
                    if close
                    else "see the scope table in docs/configuration.md#tokens",
                )
            )
        elif scope == FULL_ACCESS_SCOPE and body.get("allow_full_access") is not True:
            problems.append(
                Problem(
                    path=path,
                    message="app_token is full access to everything the rotator user can reach",
                    fix="list only the scopes the consumer needs; to accept the risk, set "
                    "allow_full_access: true",
                )
            )
    return problems


def _duration(body: Mapping[str, Any], key: str) -> timedelta | None:
    value = body.get(key, _DEFAULTS.get(key))
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        return None
    try:
        return parse_duration(value)
    except DurationError:
        return None  # the model reports it


def _schedule_problems(where: str, body: Mapping[str, Any]) -> list[Problem]:
    lifetime = _duration(body, "lifetime")
    rotate_before = _duration(body, "rotate_before")
    jitter = _duration(body, "jitter")
    if lifetime is None or lifetime <= timedelta():
        return []
    if lifetime > MAX_LIFETIME:
        return [
            Problem(
                path=f"{where}.lifetime",
                message=f"{format_duration(lifetime)} is longer than Azure DevOps allows",
                fix="use at most 365d",
            )
        ]
    if rotate_before is None or jitter is None or rotate_before <= timedelta():
        return []
    if rotate_before + jitter >= lifetime:
        lead = format_duration(rotate_before) + (
            f" + jitter {format_duration(jitter)}" if jitter else ""
        )
        return [
            Problem(
                path=f"{where}.rotate_before",
                message=f"{lead} is not shorter than lifetime {format_duration(lifetime)}: "
                "every new PAT would be due at once",
                fix="lower rotate_before (and jitter) well below lifetime, e.g. a quarter of it",
            )
        ]
    return []


def _names(identities: Mapping[str, Any]) -> str:
    return "configured identities: " + (", ".join(sorted(identities)) or "none")


@dataclass(frozen=True)
class _Context:
    """What every sink check of one token needs from the rest of the file."""

    identities: Mapping[str, Any]
    org: str | None
    seen: dict[tuple[str, ...], str]  # where each sink target was first used (filled in)
    known: set[str]  # sink kinds: built-ins and installed plugins
    models: dict[str, type[SinkSpec] | None]  # each kind's spec model, loaded once (filled in)


def _sink_problems(where: str, sinks: Any, context: _Context) -> list[Problem]:
    if not isinstance(sinks, list):
        return []
    problems: list[Problem] = []
    identities, org, seen, known = context.identities, context.org, context.seen, context.known
    for index, entry in enumerate(sinks):
        path = f"{where}.sinks[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("kind"), str):
            continue  # the model reports it
        kind = entry["kind"]
        if kind not in known:
            close = difflib.get_close_matches(kind, sorted(known), n=1, cutoff=0.6)
            problems.append(
                Problem(
                    path=f"{path}.kind",
                    message=f"unknown sink kind {kind!r}",
                    fix=f"did you mean {close[0]!r}?"
                    if close
                    else "known kinds: " + ", ".join(sorted(known)),
                )
            )
            continue
        model = _spec_model(kind, context.models)
        if model is None:
            continue  # a plugin that cannot be loaded: building the sinks reports it
        spec, found = _validated(path, model, entry)
        problems += found + _identity_problems(path, model, entry, identities)
        target = spec.target(org) if spec is not None else None
        if target is not None:
            if target in seen:
                problems.append(
                    Problem(
                        path=path,
                        message=f"writes to the same place as {seen[target]}",
                        fix="give each token (and each sink) its own secret, variable or file",
                    )
                )
            else:
                seen[target] = path
    return problems


def _spec_model(kind: str, models: dict[str, type[SinkSpec] | None]) -> type[SinkSpec] | None:
    if kind not in models:
        try:
            models[kind] = load_sink_kind(kind).spec_model
        except PatwardenError:
            models[kind] = None
    return models[kind]


def _validated(
    path: str, model: type[SinkSpec], entry: Mapping[str, Any]
) -> tuple[SinkSpec | None, list[Problem]]:
    try:
        return model.model_validate(dict(entry)), []
    except ValidationError as err:
        errors = err.errors(include_url=False, include_input=False)
        return None, [_pydantic_problem(path, model, error) for error in errors]


def _identity_problems(
    path: str, model: type[SinkSpec], entry: Mapping[str, Any], identities: Mapping[str, Any]
) -> list[Problem]:
    """The ``identity`` a sink writes as must be configured, also when it is the kind's default."""
    field = model.model_fields.get("identity")
    identity = entry.get("identity")
    if identity is None and field is not None and isinstance(field.default, str):
        identity = field.default
    if not isinstance(identity, str) or identity in identities:
        return []
    default = "" if "identity" in entry else " (the default for this sink)"
    return [
        Problem(
            path=f"{path}.identity",
            message=f"no identity named {identity!r}{default}",
            fix=_names(identities),
        )
    ]


def _pydantic_problem(
    path: str, model: type[BaseModel], error: Mapping[str, Any], *, docs: str = _SINK_DOCS
) -> Problem:
    loc = ".".join(str(part) for part in error["loc"])
    full = f"{path}.{loc}" if loc else path
    if error["type"] == "extra_forbidden":
        close = difflib.get_close_matches(str(error["loc"][-1]), list(model.model_fields), n=1)
        fix = (
            f"did you mean {close[0]!r}?" if close else "allowed: " + ", ".join(model.model_fields)
        )
        return Problem(path=full, message="unknown key", fix=fix)
    if error["type"] == "missing":
        return Problem(path=full, message="required key is missing", fix=f"see {docs}")
    message = str(error["msg"]).removeprefix("Value error, ").rstrip(".")
    return Problem(path=full, message=message, fix=f"see {docs}")


def _hook_problems(where: str, hook: Any) -> list[Problem]:
    if hook is None or not isinstance(hook, dict):
        return []
    try:
        HookSpec.model_validate(dict(hook))
    except ValidationError as err:
        return [
            _pydantic_problem(f"{where}.on_rotate", HookSpec, error, docs=_HOOK_DOCS)
            for error in err.errors(include_url=False, include_input=False)
        ]
    return []
