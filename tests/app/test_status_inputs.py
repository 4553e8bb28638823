"""What `status` reads from a validated config, as plain values, and their JSON form."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from patwarden.app.status_inputs import StatusInputs, decode, encode
from patwarden.config.model import load_config
from patwarden.identity.cache_keys import LocalKey
from patwarden.identity.credential_set import user_settings
from tests.app.test_snapshot import two_rotators


def test_the_inputs_hold_what_status_reads_and_read_back_the_same_from_json(tmp_path: Path) -> None:
    path = two_rotators(tmp_path)
    config = load_config(path)
    inputs = StatusInputs.of(config)

    flux, npm = inputs.specs
    assert (flux.name, flux.organization, flux.scopes) == ("flux-git", "contoso", ("vso.code",))
    assert (flux.lifetime, flux.rotate_before, flux.jitter) == (
        timedelta(days=30),
        timedelta(days=7),
        timedelta(hours=1),
    )
    assert (npm.rotate_before, npm.revoke_after) == (timedelta(days=2), timedelta(0))
    assert (flux.sinks, flux.hooks) == ((), ())  # status reports the sinks the state recorded
    assert inputs.rotators == {"flux-git": "rotator", "npm": "ci-rotator"}
    assert inputs.sqlite == tmp_path / "state" / "state.db"
    settings, cache = inputs.users["rotator"]
    assert settings == user_settings(config, "rotator")
    assert settings.sign_in_frequency == timedelta(days=30)
    assert cache.key == LocalKey(env="SNAPSHOT_TEST_KEY")
    assert cache.path == tmp_path / "state" / "rotator.cache"
    _, ci_cache = inputs.users["ci-rotator"]
    assert ci_cache.key == LocalKey(file=tmp_path / "keys" / "ci.key")
    assert ci_cache.path == tmp_path / "caches" / "ci.cache"

    assert decode(json.loads(json.dumps(encode(inputs)))) == inputs


def test_a_rotator_missing_from_a_config_built_in_code_is_left_to_the_context(
    tmp_path: Path,
) -> None:
    config = load_config(two_rotators(tmp_path))
    built = config.model_copy(update={"rotator": "nobody"})
    inputs = StatusInputs.of(built)
    assert inputs.rotators == {"flux-git": "nobody", "npm": "ci-rotator"}
    assert sorted(inputs.users) == ["ci-rotator"]
