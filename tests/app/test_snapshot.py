"""`status`'s snapshot of the config: what it keeps, when it is used, and when it is not."""

from __future__ import annotations

import json
import os
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

import patwarden
from patwarden.app import snapshot
from patwarden.app.context import AppContext
from patwarden.app.snapshot import load, save, snapshot_file, status_view
from patwarden.app.status_inputs import StatusInputs
from patwarden.config.model import load_config
from patwarden.errors import ConfigError
from patwarden.identity.cache_crypto import generate_cache_key
from patwarden.identity.user import UserCredential

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "11111111-2222-3333-4444-555555555555"
OTHER_CLIENT = "66666666-2222-3333-4444-555555555555"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "patwarden.yaml"
    path.write_text(textwrap.dedent(text))
    path.chmod(0o600)
    return path


def two_rotators(tmp_path: Path) -> Path:
    """Two user rotators, one keyed by a variable, one by a file with a cache path of its own."""
    key_file = tmp_path / "keys" / "ci.key"
    key_file.parent.mkdir(mode=0o700)
    key_file.write_text(generate_cache_key().reveal())
    key_file.chmod(0o600)
    return write(
        tmp_path,
        f"""\
        organization: contoso
        state_dir: state
        azure: {{tenant_id: {TENANT}}}
        identities:
          rotator:
            kind: user
            client_id: {CLIENT}
            username: svc@contoso.example
            sign_in_frequency: 30d
            cache: {{key: {{env: SNAPSHOT_TEST_KEY}}}}
          ci-rotator:
            kind: user
            client_id: {OTHER_CLIENT}
            cache: {{path: caches/ci.cache, key: {{file: keys/ci.key}}}}
        tokens:
          flux-git:
            scopes: [vso.code]
            lifetime: 30d
            jitter: 1h
            sinks: [{{kind: file, path: /etc/flux/pat}}]
          npm:
            rotator: ci-rotator
            scopes: [vso.packaging]
            lifetime: 10d
            rotate_before: 2d
            revoke_after: 0s
            sinks: [{{kind: file, path: /etc/npm/pat}}]
        """,
    )


def test_a_saved_snapshot_reads_back_the_same(tmp_path: Path) -> None:
    path = two_rotators(tmp_path)
    inputs = StatusInputs.of(load_config(path))
    assert load(path) is None
    save(inputs)
    assert load(path) == inputs


def test_an_edited_config_is_a_miss_and_its_own_snapshot_once_saved(tmp_path: Path) -> None:
    path = two_rotators(tmp_path)
    save(StatusInputs.of(load_config(path)))
    original = path.read_bytes()
    path.write_bytes(original.replace(b"lifetime: 10d", b"lifetime: 11d"))
    assert load(path) is None
    edited = StatusInputs.of(load_config(path))
    save(edited)
    assert load(path) == edited
    assert load(path).specs[1].lifetime == timedelta(days=11)  # type: ignore[union-attr]


def test_another_version_or_format_is_a_miss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = two_rotators(tmp_path)
    save(StatusInputs.of(load_config(path)))
    assert load(path) is not None
    monkeypatch.setattr(patwarden, "__version__", "99.0")
    assert load(path) is None
    monkeypatch.undo()
    monkeypatch.setattr(snapshot, "FORMAT", snapshot.FORMAT + 1)
    assert load(path) is None


def test_changed_code_that_derives_the_snapshot_is_a_miss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A checkout edited in place keeps its version: the fingerprint of the modules that derive
    # the snapshot must change with them.
    fake = tmp_path / "patwarden"
    for name in snapshot._DERIVED_BY:
        target = fake / name if name.endswith(".py") else fake / name / "schema.py"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("# v1\n")
    monkeypatch.setattr(patwarden, "__file__", str(fake / "__init__.py"))
    before = snapshot._code_fingerprint()
    schema = fake / "config" / "schema.py"
    schema.write_text("# v2, longer\n")
    assert snapshot._code_fingerprint() != before


def test_a_snapshot_others_may_write_a_link_or_a_damaged_one_is_a_miss(tmp_path: Path) -> None:
    path = two_rotators(tmp_path)
    save(StatusInputs.of(load_config(path)))
    kept = snapshot_file(path)
    assert kept is not None
    good = kept.read_bytes()

    kept.chmod(0o620)
    assert load(path) is None
    kept.chmod(0o600)
    assert load(path) is not None

    kept.write_bytes(good[: len(good) // 2])
    assert load(path) is None
    kept.write_bytes(b'{"key": {}, "inputs": []}')
    assert load(path) is None

    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_bytes(good)
    elsewhere.chmod(0o600)
    kept.unlink()
    kept.symlink_to(elsewhere)
    assert load(path) is None


def test_the_snapshot_is_private_and_holds_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = generate_cache_key().reveal()
    monkeypatch.setenv("SNAPSHOT_TEST_KEY", key)
    path = two_rotators(tmp_path)
    save(StatusInputs.of(load_config(path)))
    kept = snapshot_file(path)
    assert kept is not None
    assert kept.parent == Path(os.environ["XDG_CACHE_HOME"]) / "patwarden" / "status"
    assert (kept.stat().st_mode & 0o777, kept.parent.stat().st_mode & 0o777) == (0o600, 0o700)
    text = kept.read_text()
    assert key not in text
    assert (tmp_path / "keys" / "ci.key").read_text() not in text
    assert json.loads(text)["inputs"]["users"]["rotator"]["cache"]["key"]["env"] == (
        "SNAPSHOT_TEST_KEY"
    )


def test_a_cache_directory_others_may_write_only_costs_the_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared-cache"
    (shared / "patwarden" / "status").mkdir(parents=True)
    (shared / "patwarden" / "status").chmod(0o777)
    monkeypatch.setenv("XDG_CACHE_HOME", str(shared))
    path = two_rotators(tmp_path)
    view = status_view(AppContext(config_path=str(path)))
    assert [spec.name for spec in view.specs()] == ["flux-git", "npm"]
    assert list((shared / "patwarden" / "status").iterdir()) == []
    assert load(path) is None


def test_status_view_loads_the_config_once_then_reads_the_snapshot(tmp_path: Path) -> None:
    path = two_rotators(tmp_path)
    first = AppContext(config_path=str(path))
    loaded = status_view(first)
    assert first.config_loaded

    second = AppContext(config_path=str(path))
    kept = status_view(second)
    assert not second.config_loaded
    assert kept.inputs == loaded.inputs
    assert kept.specs(["npm"]) == loaded.specs(["npm"])
    assert (kept.rotator_for("npm"), kept.rotator_for("flux-git")) == ("ci-rotator", "rotator")
    user = kept.user("rotator")
    assert isinstance(user, UserCredential)
    assert user.settings == loaded.user("rotator").settings
    assert not second.config_loaded  # the rotator's credential came from the snapshot

    with pytest.raises(ConfigError, match=r"no token named 'nope' in .*patwarden.yaml") as err:
        kept.specs(["nope"])
    assert err.value.hint == "configured tokens: flux-git, npm"


def test_status_reads_key_vault_caches_and_other_states_through_the_config(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        f"""\
        organization: contoso
        azure: {{tenant_id: {TENANT}}}
        state: {{backend: postgresql, url: "postgresql://patwarden@localhost/patwarden"}}
        identities:
          writer: {{kind: service_principal, client_id: {OTHER_CLIENT},
                    client_secret: {{env: WRITER_SECRET}}}}
          rotator:
            kind: user
            client_id: {CLIENT}
            cache: {{kind: key_vault, vault_url: "https://ops-kv.vault.azure.net",
                     secret: rotator-cache, identity: writer, key: {{env: SNAPSHOT_TEST_KEY}}}}
        tokens: {{}}
        """,
    )
    save(StatusInputs.of(load_config(path)))
    app = AppContext(config_path=str(path))
    view = status_view(app)
    assert (view.inputs.sqlite, dict(view.inputs.users)) == (None, {})
    assert view.user("rotator") is app.credentials.user("rotator")  # built from the config
    assert app.config_loaded


def test_without_a_home_or_cache_directory_status_keeps_no_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = two_rotators(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # ignored, as the XDG spec says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    kept = snapshot_file(path)
    assert kept is not None
    assert kept.parent == tmp_path / "home" / ".cache" / "patwarden" / "status"
    monkeypatch.delenv("HOME")
    monkeypatch.setattr(os.path, "expanduser", lambda path: path)  # no passwd entry either
    assert snapshot_file(path) is None
    view = status_view(AppContext(config_path=str(path)))
    assert [spec.name for spec in view.specs()] == ["flux-git", "npm"]
    assert load(path) is None


def test_a_config_built_in_code_is_read_but_not_kept(tmp_path: Path) -> None:
    config = load_config(two_rotators(tmp_path)).model_copy()
    config._source = config._sha256 = None  # as if built in code: no file, no digest
    view = status_view(AppContext(config=config))
    assert (view.inputs.source, view.inputs.sha256) == (None, None)
    assert [spec.name for spec in view.specs()] == ["flux-git", "npm"]
    assert list(Path(os.environ["XDG_CACHE_HOME"]).iterdir()) == []
