"""What ``patwarden status`` reads from a validated config (:class:`StatusInputs`), as plain
values, and their JSON form: the content of ``status``'s snapshot of the config
(:mod:`patwarden.app.snapshot`). Light to import: no YAML, no pydantic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from patwarden.domain.models import TokenSpec
from patwarden.identity.cache_keys import LocalKey
from patwarden.identity.file_cache import FileCache
from patwarden.identity.user import UserSettings

if TYPE_CHECKING:
    from patwarden.config.model import Config

__all__ = ["StatusInputs", "decode", "encode"]


@dataclass(frozen=True, kw_only=True)
class StatusInputs:
    """Everything ``status`` reads from a validated config, as plain values.

    ``specs`` carry each token's organization, scopes and schedule (no sinks, no hooks: ``status``
    reports the sinks the state recorded). ``users`` holds the rotators whose cache is a local
    file; ``sqlite`` is None when the state is not SQLite.
    """

    source: Path | None  # the config file (None: a config built in code)
    sha256: str | None
    default_rotator: str
    specs: tuple[TokenSpec, ...]
    rotators: Mapping[str, str]
    users: Mapping[str, tuple[UserSettings, FileCache]]
    sqlite: Path | None
    secret_files: tuple[Path, ...]

    @classmethod
    def of(cls, config: Config) -> StatusInputs:
        """What ``status`` needs from *config*.

        Raises:
            ConfigError: a token has no organization (see :func:`~patwarden.app.specs.token_specs`).
        """
        from patwarden.app.context import STATE_FILE
        from patwarden.app.specs import token_specs
        from patwarden.config.loader import secret_files
        from patwarden.identity.credential_set import file_cache, user_settings

        rotators = {name: token.rotator or config.rotator for name, token in config.tokens.items()}
        users = {}
        for name in sorted({config.rotator, *rotators.values()} & set(config.identities)):
            cache = file_cache(config, name)  # an unknown one stays for the context to refuse
            if cache is not None:
                users[name] = (user_settings(config, name), cache)
        state = config.state
        return cls(
            source=None if config.source is None else config.source.absolute(),
            sha256=config.sha256,
            default_rotator=config.rotator,
            specs=tuple(replace(spec, sinks=(), hooks=()) for spec in token_specs(config)),
            rotators=rotators,
            users=users,
            sqlite=(state.path or config.state_dir / STATE_FILE)
            if state.backend == "sqlite"
            else None,
            secret_files=tuple(dict.fromkeys(secret_files(config))),
        )


# --- JSON: timedeltas in microseconds, paths as strings -------------------------------------------


def _us(value: timedelta) -> int:
    return value // timedelta(microseconds=1)


def encode(inputs: StatusInputs) -> dict[str, Any]:
    """*inputs* as a JSON document."""
    return {
        "source": None if inputs.source is None else str(inputs.source),
        "sha256": inputs.sha256,
        "default_rotator": inputs.default_rotator,
        "specs": [
            {
                "name": spec.name,
                "organization": spec.organization,
                "scopes": list(spec.scopes),
                "lifetime": _us(spec.lifetime),
                "rotate_before": _us(spec.rotate_before),
                "revoke_after": _us(spec.revoke_after),
                "jitter": _us(spec.jitter),
            }
            for spec in inputs.specs
        ],
        "rotators": dict(inputs.rotators),
        "users": {
            name: {"settings": _encode_settings(settings), "cache": _encode_cache(cache)}
            for name, (settings, cache) in inputs.users.items()
        },
        "sqlite": None if inputs.sqlite is None else str(inputs.sqlite),
        "secret_files": [str(path) for path in inputs.secret_files],
    }


def _encode_settings(settings: UserSettings) -> dict[str, Any]:
    frequency = settings.sign_in_frequency
    return {
        "name": settings.name,
        "client_id": settings.client_id,
        "tenant_id": settings.tenant_id,
        "authority_host": settings.authority_host,
        "ca_bundle": settings.ca_bundle,
        "instance_discovery": settings.instance_discovery,
        "expected_username": settings.expected_username,
        "sign_in_frequency": None if frequency is None else _us(frequency),
    }


def _encode_cache(cache: FileCache) -> dict[str, Any]:
    key = cache.key
    return {
        "identity": cache.identity,
        "path": str(cache.path),
        "key": {
            "env": key.env,
            "file": None if key.file is None else str(key.file),
            "keyring": key.keyring,
        },
        "tenant_id": cache.tenant_id,
        "client_id": cache.client_id,
        "account": cache.account,
        "state_dir": str(cache.state_dir),
    }


def decode(raw: dict[str, Any]) -> StatusInputs:
    """The inputs :func:`encode` wrote.

    Raises:
        KeyError | TypeError | ValueError | AttributeError: *raw* is not such a document.
    """

    def us(value: int) -> timedelta:
        return timedelta(microseconds=value)

    users = {}
    for name, user in raw["users"].items():
        settings, cache, key = user["settings"], user["cache"], user["cache"]["key"]
        frequency = settings["sign_in_frequency"]
        users[name] = (
            UserSettings(
                **{**settings, "sign_in_frequency": None if frequency is None else us(frequency)}
            ),
            FileCache(
                **{
                    **cache,
                    "path": Path(cache["path"]),
                    "state_dir": Path(cache["state_dir"]),
                    "key": LocalKey(
                        env=key["env"],
                        file=None if key["file"] is None else Path(key["file"]),
                        keyring=key["keyring"],
                    ),
                }
            ),
        )
    return StatusInputs(
        source=None if raw["source"] is None else Path(raw["source"]),
        sha256=raw["sha256"],
        default_rotator=raw["default_rotator"],
        specs=tuple(
            TokenSpec(
                name=spec["name"],
                organization=spec["organization"],
                scopes=tuple(spec["scopes"]),
                lifetime=us(spec["lifetime"]),
                rotate_before=us(spec["rotate_before"]),
                revoke_after=us(spec["revoke_after"]),
                jitter=us(spec["jitter"]),
            )
            for spec in raw["specs"]
        ),
        rotators=dict(raw["rotators"]),
        users=users,
        sqlite=None if raw["sqlite"] is None else Path(raw["sqlite"]),
        secret_files=tuple(Path(path) for path in raw["secret_files"]),
    )
