"""Read the config file: strict YAML, permission warnings, then validation into a Config."""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ValidationError

from patwarden.config.location import CONFIG_DOCS, read_config_bytes
from patwarden.config.permissions import warn_if_readable_by_others
from patwarden.config.problems import InvalidConfig, Problem, problems_from_validation
from patwarden.config.references import semantic_problems
from patwarden.config.schema import Config
from patwarden.config.token_checks import hook_secret_files
from patwarden.errors import ConfigError

# libyaml's parser when PyYAML has it: ~5x faster on a 1,000-token config (1.3 s -> 0.3 s),
# a cost every `rotate` pays (docs/performance.md#history-independent-runs).
if TYPE_CHECKING:
    _SafeLoader = yaml.SafeLoader
else:
    _SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_SafeLoader):
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


def _read_text(path: Path) -> tuple[str, str]:
    """The file's text and the SHA-256 of its bytes, refusing what is not a small regular UTF-8
    file.

    Raises:
        ConfigError: missing, not a regular file, too large, unreadable or not UTF-8.
    """
    data = read_config_bytes(path)
    try:
        return data.decode("utf-8"), hashlib.sha256(data).hexdigest()
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (invalid byte at offset {err.start})",
            hint="save the file as UTF-8; check that --config points at the YAML file",
            docs=CONFIG_DOCS,
        ) from None


def _read_yaml(path: Path) -> tuple[Any, str]:
    text, digest = _read_text(path)
    try:
        return yaml.load(text, Loader=_StrictLoader), digest  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        if "maximum nesting depth" in str(getattr(err, "problem", "")):  # libyaml's own limit
            raise _too_deep(path) from None
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise ConfigError(
            f"{path} is not valid YAML{where}: {problem}",
            hint="fix the YAML syntax (indentation, quoting, duplicate keys)",
            docs=CONFIG_DOCS,
        ) from None
    except RecursionError:
        raise _too_deep(path) from None


def _too_deep(path: Path) -> ConfigError:
    return ConfigError(
        f"{path} nests lists or mappings too deeply to be a patwarden configuration",
        hint="check that --config points at the right file",
        docs=CONFIG_DOCS,
    )


def validate_config_file(path: Path) -> Config:
    """Load ``path`` into a :class:`Config`, reporting every problem at once.

    Raises:
        ConfigError: the file cannot be read or parsed.
        InvalidConfig: the content has problems.
    """
    with _no_collection():
        return _validate_config_file(path)


@contextmanager
def _no_collection() -> Iterator[None]:
    """No cyclic garbage collection meanwhile: parsing and validating a 1,000-token config
    allocates some 200,000 objects that all live on, and the collector would traverse the whole
    heap several times to find no garbage (~20 ms of such a `rotate`; docs/performance.md)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _validate_config_file(path: Path) -> Config:
    raw, digest = _read_yaml(path)
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
    config._source = path  # private attributes; the model's fields stay frozen
    config._sha256 = digest
    for secret_file in secret_files(config):
        warn_if_readable_by_others(secret_file, what="secret file")
    return config


def secret_files(config: Config) -> Iterator[Path]:
    """Every file *config* reads a secret from (identities, certificates, hooks): the loader
    warns when others may read one."""

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
    yield from hook_secret_files(config)
    for identity in config.identities.values():
        certificate = getattr(identity, "certificate", None)
        if certificate is not None:
            yield certificate.path
