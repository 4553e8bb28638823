"""Turn a config file into a :class:`~patwarden.config.Config`, or into a list of problems.

Each problem names its key path (``identities.writer.client_secret``), says what is wrong and how
to fix it. Schema problems come from pydantic; cross-references (which identity rotates, which
identity reads a Key Vault reference, tenants, cycles) are checked on the raw YAML so that they are
reported together with the schema problems. Input values are never echoed for keys that may hold a
secret.
"""

from __future__ import annotations

import difflib
import logging
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from patwarden.config import APP_IDENTITY_KINDS, IDENTITY_MODELS, TAGGED_MODELS, Config
from patwarden.errors import DOCS, ConfigError

log = logging.getLogger(__name__)

CONFIG_DOCS = f"{DOCS}/configuration.md"
SP_ROTATOR_DOCS = f"{DOCS}/identities.md#why-a-service-principal-cannot-rotate"
_TENANT_KINDS = ("user", "service_principal", "workload_identity", "legacy_password")
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


# --- reading YAML ------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of silently keeping the last one."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"duplicate key {key!r}",
                key_node.start_mark,
            )
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates
)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} not found",
            hint="pass --config FILE, set PATWARDEN_CONFIG, or create ./patwarden.yaml",
            docs=CONFIG_DOCS,
        ) from None
    except OSError as err:
        raise ConfigError(
            f"cannot read config file {path}: {err.strerror}",
            hint="check the path and that this user may read it",
        ) from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise ConfigError(
            f"{path} is not valid YAML{where}: {problem}",
            hint="fix the YAML syntax (indentation, quoting, duplicate keys)",
            docs=CONFIG_DOCS,
        ) from None


def warn_if_readable_by_others(path: Path, *, what: str) -> None:
    """Log a warning when ``path`` can be read by its group or by others (like certbot)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "%s %s is accessible by group or others (mode %o); restrict it with `chmod 600 %s`",
            what,
            path,
            stat.S_IMODE(mode),
            path,
        )


def validate_config_file(path: Path) -> Config:
    """Load ``path`` into a :class:`Config`, reporting every problem at once.

    Raises:
        ConfigError: the file cannot be read or parsed.
        InvalidConfig: the content has problems.
    """
    raw = _read_yaml(path)
    warn_if_readable_by_others(path, what="config file")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidConfig(
            source=path,
            problems=[
                Problem(
                    path="",
                    message="the file must be a mapping of keys",
                    fix="see docs/configuration.md",
                )
            ],
        )
    problems: list[Problem] = []
    config: Config | None = None
    try:
        config = Config.model_validate(raw, context={"base_dir": path.parent.resolve()})
    except ValidationError as err:
        problems.extend(problems_from_validation(err))
    for problem in semantic_problems(raw):
        if problem not in problems:
            problems.append(problem)
    if problems or config is None:
        raise InvalidConfig(source=path, problems=problems)
    for secret_file in _secret_files(config):
        warn_if_readable_by_others(secret_file, what="secret file")
    config._source = path  # a private attribute; the model's fields stay frozen
    return config


def _secret_files(config: Config) -> Iterator[Path]:
    def walk(node: Any) -> Iterator[Path]:
        if isinstance(node, BaseModel):
            file = getattr(node, "file", None)
            if isinstance(file, Path):
                yield file
            for name in type(node).model_fields:
                yield from walk(getattr(node, name))
        elif isinstance(node, dict):
            for value in node.values():
                yield from walk(value)

    yield from walk(config.identities)
    for identity in config.identities.values():
        certificate = getattr(identity, "certificate", None)
        if certificate is not None:
            yield certificate.path


# --- schema problems ---------------------------------------------------------------------------


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
    return Problem(
        path=path,
        message=str(error["msg"]).lower().rstrip("."),
        fix=f"e.g. {example}" if example else None,
    )


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


# --- cross-references --------------------------------------------------------------------------


def _identities(raw: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    found = raw.get("identities")
    if not isinstance(found, dict):
        return {}
    return {str(name): body for name, body in found.items() if isinstance(body, dict)}


def _key_vault_refs(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Every ``{key_vault: {..., identity: X}}`` reference (and Key Vault cache) under ``node``."""
    if isinstance(node, dict):
        inner = node.get("key_vault")
        if len(node) == 1 and isinstance(inner, dict) and "identity" in inner:
            yield f"{path}.key_vault.identity", inner["identity"]
        if node.get("kind") == "key_vault" and "identity" in node:
            yield f"{path}.identity", node["identity"]
        for key, value in node.items():
            yield from _key_vault_refs(value, f"{path}.{key}")


def semantic_problems(raw: Mapping[str, Any]) -> list[Problem]:
    """Cross-reference checks on the raw mapping (robust to schema errors elsewhere)."""
    identities = _identities(raw)
    azure_raw = raw.get("azure")
    azure: Mapping[str, Any] = azure_raw if isinstance(azure_raw, dict) else {}
    problems: list[Problem] = []
    if raw.get("organization") and raw.get("organizations"):
        problems.append(
            Problem(
                path="organizations", message="set either organization or organizations, not both"
            )
        )
    elif not raw.get("organization") and not raw.get("organizations"):
        problems.append(
            Problem(
                path="organization",
                message="no Azure DevOps organization",
                fix="organization: contoso",
            )
        )
    problems += _role_problems(raw, identities)
    edges: dict[str, set[str]] = {name: set() for name in identities}
    for name, body in identities.items():
        kind = body.get("kind")
        if kind in _TENANT_KINDS and not body.get("tenant_id") and not azure.get("tenant_id"):
            problems.append(
                Problem(
                    path=f"identities.{name}.tenant_id",
                    message="no tenant for this identity",
                    fix="set identities.<name>.tenant_id or azure.tenant_id (the directory's GUID)",
                )
            )
        if kind == "legacy_password" and body.get("legacy_password_flow") is not True:
            problems.append(
                Problem(
                    path=f"identities.{name}.legacy_password_flow",
                    message="the password (ROPC) flow is deprecated, insecure and blocked by MFA",
                    fix=(
                        "prefer kind: user with `patwarden login`; to accept the risk set "
                        "legacy_password_flow: true"
                    ),
                )
            )
        for ref_path, target in _key_vault_refs(body, f"identities.{name}"):
            if target not in identities:
                problems.append(
                    Problem(
                        path=ref_path,
                        message=f"no identity named {target!r}",
                        fix=_names(identities),
                    )
                )
            else:
                edges[name].add(str(target))
    problems += _cycle_problems(edges)
    return problems


def _names(identities: Mapping[str, Any]) -> str:
    return "configured identities: " + (", ".join(sorted(identities)) or "none")


def _role_problems(
    raw: Mapping[str, Any], identities: Mapping[str, Mapping[str, Any]]
) -> list[Problem]:
    problems: list[Problem] = []
    rotator = raw.get("rotator", "rotator")
    if rotator not in identities:
        problems.append(
            Problem(
                path="rotator" if "rotator" in raw else "identities",
                message=f"no identity named {rotator!r} to create and revoke PATs",
                fix="add identities.rotator: {kind: user, client_id: ...} or point rotator: at one",
            )
        )
    elif identities[rotator].get("kind") in APP_IDENTITY_KINDS:
        kind = identities[rotator].get("kind")
        problems.append(
            Problem(
                path=f"identities.{rotator}.kind",
                message=(
                    f"a {kind} cannot be the rotator: the Azure DevOps PAT Lifecycle API "
                    "accepts only a "
                    "user's delegated Entra token and refuses service principals and managed "
                    "identities "
                    "('Service principals are not allowed to perform this action.')"
                ),
                fix=(
                    "either make the rotator a dedicated Entra user (kind: user) and run "
                    f"`patwarden login --identity {rotator}` once, or drop the PAT where the "
                    "consumer "
                    f"accepts Entra tokens directly; see {SP_ROTATOR_DOCS}"
                ),
            )
        )
    auditor = raw.get("auditor")
    if auditor is not None and auditor not in identities:
        problems.append(
            Problem(
                path="auditor", message=f"no identity named {auditor!r}", fix=_names(identities)
            )
        )
    return problems


def _cycle_problems(edges: Mapping[str, set[str]]) -> list[Problem]:
    """A reads its secret with B, B reads its own with A: neither can ever start."""
    problems: list[Problem] = []
    reported: set[frozenset[str]] = set()

    def visit(node: str, trail: list[str]) -> None:
        for target in sorted(edges.get(node, ())):
            if target in trail:
                cycle = [*trail[trail.index(target) :], target]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    problems.append(
                        Problem(
                            path=f"identities.{cycle[0]}",
                            message="secret references go round in a circle: " + " -> ".join(cycle),
                            fix="let one of these identities read its secret from env or a file",
                        )
                    )
            else:
                visit(target, [*trail, target])

    for start in sorted(edges):
        visit(start, [start])
    return problems
