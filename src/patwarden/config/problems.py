"""Config problems: what is wrong, at which key path, and how to fix it.

:class:`Problem` is one finding; :class:`InvalidConfig` carries them all (exit code 2).
:func:`problems_from_validation` turns pydantic's errors into problems: union tags are dropped from
key paths, misspelt keys get a "did you mean", and input values are never echoed for keys that
may hold a secret. Cross-references live in :mod:`patwarden.config.references`; reading the file
in :mod:`patwarden.config.loader`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from patwarden.config.location import CONFIG_DOCS
from patwarden.config.schema import IDENTITY_MODELS, TAGGED_MODELS, Config
from patwarden.errors import ConfigError

_REF_EXAMPLE = (
    "{env: NAME}, {file: /run/secrets/name} or {key_vault: {vault_url, secret, identity}}"
)


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One thing wrong in the config file."""

    path: str
    message: str
    fix: str | None = None

    def __str__(self) -> str:
        where = self.path or "(top level)"
        if not where.isprintable():  # a key with control characters must not end the line
            where = repr(where)
        return f"{where}: {self.message}" + (f" — {self.fix}" if self.fix else "")


class InvalidConfig(ConfigError):
    """The config file has one or more problems; ``problems`` lists them all."""

    def __init__(self, *, source: Path, problems: Sequence[Problem]) -> None:
        count = len(problems)
        lines = [f"{source}: {count} problem{'s' if count != 1 else ''} in the configuration"]
        lines += [f"  - {problem}" for problem in problems]
        super().__init__("\n".join(lines), docs=CONFIG_DOCS)
        self.source = source
        self.problems = tuple(problems)


def _clean_loc(loc: Sequence[int | str]) -> tuple[int | str, ...]:
    return tuple(part for part in loc if not (isinstance(part, str) and part in TAGGED_MODELS))


def _dotted(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``X | None`` down to the interesting type."""
    while True:
        args = get_args(annotation)
        if get_origin(annotation) is not None and hasattr(annotation, "__metadata__"):
            annotation = args[0]
            continue
        non_none = [arg for arg in args if arg is not type(None)]
        if args and len(non_none) == 1 and type(None) in args:
            annotation = non_none[0]
            continue
        return annotation


def _model_at(loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at ``loc`` (tags included), if one does."""
    current: Any = Config
    for part in loc:
        if isinstance(part, str) and part in TAGGED_MODELS:
            current = TAGGED_MODELS[part]
            continue
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        elif get_origin(current) in (dict, tuple, list):
            args = get_args(current)
            current = args[-1] if get_origin(current) is dict else args[0]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _field_at(loc: Sequence[int | str]) -> FieldInfo | None:
    if not loc:
        return None
    model = _model_at(loc[:-1])
    return model.model_fields.get(str(loc[-1])) if model else None


def _flow(value: Any) -> str:
    return (
        str(yaml.safe_dump(value, default_flow_style=True, width=200))
        .strip()
        .removesuffix("...")
        .strip()
    )


def _example(loc: Sequence[int | str]) -> str | None:
    field = _field_at(loc)
    if field is not None and field.examples:
        return _flow(field.examples[0])
    return None


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return "allowed: " + ", ".join(choices)


def _problem(error: Mapping[str, Any]) -> Problem:
    loc = error["loc"]
    clean = _clean_loc(loc)
    path = _dotted(clean)
    kind = error["type"]
    name = str(clean[-1]) if clean else ""
    example = _example(loc)
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        choices = sorted(model.model_fields) if model else []
        return Problem(
            path=path, message="unknown key", fix=_suggest(name, choices) if choices else None
        )
    if kind == "missing":
        fix = f"add it, e.g. {name}: {example}" if example else f"add {name}"
        return Problem(path=path, message="required key is missing", fix=fix)
    if kind == "identity_kind":
        given = error["input"].get("kind") if isinstance(error["input"], dict) else None
        kinds = list(IDENTITY_MODELS)
        if given is None:
            return Problem(
                path=f"{path}.kind", message="missing", fix="add kind: one of " + ", ".join(kinds)
            )
        return Problem(
            path=f"{path}.kind", message=f"unknown kind {given!r}", fix=_suggest(str(given), kinds)
        )
    if kind == "cache_kind":
        return Problem(
            path=f"{path}.kind",
            message="unknown cache kind",
            fix="use kind: file or kind: key_vault",
        )
    if kind == "secret_literal":
        return Problem(
            path=path,
            message="a secret must not be written into the config file",
            fix=f"reference it instead: {example or '{env: NAME}'} ({_REF_EXAMPLE})",
        )
    if kind in ("secret_ref", "cache_key_ref"):
        options = "{env, file, key_vault" + (", keyring}" if kind == "cache_key_ref" else "}")
        return Problem(
            path=path, message=f"expected one of {options}", fix=f"e.g. {example or '{env: NAME}'}"
        )
    if kind == "https_url":
        return Problem(
            path=path,
            message=error["msg"],
            fix=f"e.g. {example or 'https://login.microsoftonline.com'}",
        )
    if kind == "duration":
        return Problem(
            path=path, message=error["msg"], fix="write a number and a unit: 30d, 12h, 90m or 45s"
        )
    if kind == "cache_plaintext":
        return Problem(
            path=path,
            message=error["msg"],
            fix="key: {env: PATWARDEN_CACHE_KEY} (make one with `patwarden config cache-key`), "
            "or plaintext: true to keep the refresh token in plaintext (docs/security.md)",
        )
    if kind == "sp_credential":
        return Problem(
            path=path,
            message="a service principal needs exactly one of client_secret or certificate",
            fix="client_secret: {env: AZURE_CLIENT_SECRET}  or  certificate: {path: cert.pem}",
        )
    if kind == "string_pattern_mismatch":
        if clean and clean[-1] == "[key]":  # a mapping key (an identity name) failed its pattern
            clean = clean[:-1]
            return Problem(
                path=_dotted(clean), message="is not a valid name", fix=_pattern_fix(clean)
            )
        return Problem(
            path=path, message="has characters that are not allowed", fix=_pattern_fix(clean)
        )
    if kind in ("guid", "tenant"):
        return Problem(
            path=path, message=error["msg"], fix="copy it from the app registration's Overview page"
        )
    message = "input should be a path" if kind == "path_type" else str(error["msg"]).lower()
    return Problem(
        path=path,
        message=message.rstrip("."),
        fix=f"e.g. {example}" if example else _TYPE_FIXES.get(kind, _SEE_DOCS),
    )


_SEE_DOCS = "see this key in docs/configuration.md"
_MAPPING_FIX = "write a mapping here (key: value lines, or {key: value})"
_LIST_FIX = "write a list here ([a, b], or one '- item' per line)"
# A fix for every problem: when a key has no example, say what kind of value it takes.
_TYPE_FIXES = {
    "dict_type": _MAPPING_FIX,
    "model_type": _MAPPING_FIX,
    "model_attributes_type": _MAPPING_FIX,
    "list_type": _LIST_FIX,
    "tuple_type": _LIST_FIX,
    "string_type": "write text here (quote it if YAML reads it as a number, date or true/false)",
    "path_type": "write a file or directory path here, as text",
    "bool_type": "write true or false",
    "bool_parsing": "write true or false",
    "int_type": "write a whole number",
    "int_parsing": "write a whole number",
    "literal_error": _SEE_DOCS,
}


def _pattern_fix(loc: Sequence[int | str]) -> str:
    if len(loc) == 2 and loc[0] == "identities":
        return "identity names use lowercase letters, digits, '-' and '_' (e.g. writer)"
    if loc and loc[0] in ("organization", "organizations"):
        return "use the organization's short name from https://dev.azure.com/<name>"
    if loc and loc[-1] == "env":
        return "an environment variable name, e.g. AZURE_CLIENT_SECRET"
    return (
        "Key Vault names use letters, digits and '-'"
        if loc and loc[-1] == "secret"
        else "see docs/configuration.md"
    )


def problems_from_validation(err: ValidationError) -> list[Problem]:
    """One :class:`Problem` per pydantic error, without echoing values that may be secret."""
    problems: list[Problem] = []
    for error in err.errors(include_url=False):
        problem = _problem(error)
        if problem not in problems:
            problems.append(problem)
    return problems
