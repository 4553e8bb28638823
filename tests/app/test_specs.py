"""Configured tokens become the engine's TokenSpecs: defaults, hooks, names."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from patwarden.app.specs import token_specs
from patwarden.config.hooks import HookSpec
from patwarden.config.model import load_config
from patwarden.domain.models import TokenSpec
from patwarden.errors import ConfigError
from patwarden.sinks.file import FileSinkSpec

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "11111111-2222-3333-4444-555555555555"


def test_specs_from_the_config(tmp_path: Path) -> None:
    path = tmp_path / "patwarden.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            organization: contoso
            azure: {{tenant_id: {TENANT}}}
            identities: {{rotator: {{kind: user, client_id: {CLIENT}}}}}
            tokens:
              flux-git:
                scopes: [vso.code, vso.packaging]
                lifetime: 30d
                jitter: 1h
                sinks: [{{kind: file, path: /etc/flux/pat}}]
                on_rotate: {{webhook: {{file: hook-url}}, timeout: 5}}
              npm: {{scopes: [vso.packaging], lifetime: 10d, rotate_before: 2d, revoke_after: 0s}}
            """
        )
    )
    path.chmod(0o600)
    config = load_config(path)
    flux, npm = token_specs(config)
    assert flux == TokenSpec(
        name="flux-git",
        organization="contoso",
        scopes=("vso.code", "vso.packaging"),
        lifetime=timedelta(days=30),
        rotate_before=timedelta(days=7),
        revoke_after=timedelta(days=1),
        jitter=timedelta(hours=1),
        sinks=(FileSinkSpec(path=Path("/etc/flux/pat")),),
        hooks=flux.hooks,
    )
    (hook,) = flux.hooks
    assert isinstance(hook, HookSpec)
    assert hook.timeout == 5
    assert getattr(hook.webhook, "file", None) == tmp_path.resolve() / "hook-url"
    assert (npm.revoke_after, npm.sinks, npm.hooks) == (timedelta(0), (), ())
    assert [s.name for s in token_specs(config, names=["npm"])] == ["npm"]
    with pytest.raises(ConfigError, match=r"no token named 'nope', 'zz' in .*patwarden\.yaml"):
        token_specs(config, names=["zz", "nope", "npm"])
