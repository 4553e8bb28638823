"""The engine's view of the configured tokens: :class:`~patwarden.domain.models.TokenSpec` values.

Each ``tokens.<name>`` entry of a validated :class:`~patwarden.config.model.Config` becomes one
spec: its organization (the config's only one when not set), scopes and durations, its sink entries
as their kinds' validated specs (asked of :mod:`patwarden.sinks.registry`; built into sinks by
:class:`~patwarden.sinks.wiring.SinkWiring`) and its ``on_rotate`` hook as a
:class:`~patwarden.config.hooks.HookSpec`, whose ``{file: …}`` paths resolve against the config
file's folder like every other path in it.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

from patwarden.domain.models import TokenSpec
from patwarden.errors import ConfigError

if TYPE_CHECKING:
    from patwarden.config.model import Config

__all__ = ["check_names", "token_specs"]


def check_names(names: Collection[str], configured: Collection[str], source: Path | None) -> None:
    """Refuse a name in *names* that is not one of the *configured* tokens.

    Raises:
        ConfigError: naming each unknown token and listing the configured ones.
    """
    unknown = sorted(set(names) - set(configured))
    if unknown:
        raise ConfigError(
            f"no token named {', '.join(map(repr, unknown))} in {source or 'the configuration'}",
            hint="configured tokens: " + (", ".join(configured) or "none"),
        )


def token_specs(config: Config, *, names: Collection[str] = ()) -> list[TokenSpec]:
    """The engine's view of the configured tokens (all, or those in *names*), in config order.

    Raises:
        ConfigError: a name is not a configured token, or a token has no organization.
        SinkConfigError: a sink entry is invalid (load_config has already reported it).
        SinkPluginError: a sink plugin could not be loaded.
    """
    from patwarden.config.hooks import HookSpec
    from patwarden.sinks.registry import parse_sink_entry

    check_names(names, config.tokens, config.source)
    base = {"base_dir": config.source.parent.resolve()} if config.source else None
    specs = []
    for name, token in config.tokens.items():
        if names and name not in names:
            continue
        organization = token.organization or (config.orgs[0] if len(config.orgs) == 1 else None)
        if organization is None:
            raise ConfigError(
                f"tokens.{name} names no organization and the config has several",
                hint=f"set tokens.{name}.organization",
            )
        hooks = (HookSpec.model_validate(token.on_rotate, context=base),) if token.on_rotate else ()
        specs.append(
            TokenSpec(
                name=name,
                organization=organization,
                scopes=token.scopes,
                lifetime=token.lifetime,
                rotate_before=token.rotate_before,
                revoke_after=token.revoke_after,
                jitter=token.jitter,
                sinks=tuple(
                    parse_sink_entry(entry, where=f"tokens.{name}.sinks[{index}]")
                    for index, entry in enumerate(token.sinks)
                ),
                hooks=hooks,
            )
        )
    return specs
