"""The ``tokens:`` and ``rotation:`` sections: every rule, reported together with path and fix."""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from patwarden.config.model import Config, load_config
from patwarden.config.problems import InvalidConfig
from patwarden.config.tokens import KNOWN_PAT_SCOPES, TokenConfig
from tests.schema_support import validate

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "11111111-2222-3333-4444-555555555555"
KV = {"kind": "key_vault", "vault_url": "https://ops-kv.vault.azure.net", "secret": "flux-git-pat"}
BASE: dict[str, Any] = {
    "organization": "contoso",
    "azure": {"tenant_id": TENANT},
    "identities": {
        "rotator": {"kind": "user", "client_id": CLIENT},
        "writer": {"kind": "managed_identity"},
    },
}
DOCS = Path(__file__).parents[2] / "docs"


def write(tmp_path: Path, data: dict[str, Any], *, mode: int = 0o600) -> Path:
    path = tmp_path / "patwarden.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    path.chmod(mode)
    return path


def config_with(tokens: dict[str, Any], **top: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(BASE))
    data.update(top)
    data["tokens"] = tokens
    return data


def token(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"scopes": ["vso.code"], "lifetime": "30d", "sinks": [dict(KV)]}
    body.update(changes)
    return body


def problems(tmp_path: Path, data: dict[str, Any]) -> dict[str, str]:
    """Load a bad config; return {key path: rendered problem}."""
    with pytest.raises(InvalidConfig) as caught:
        load_config(write(tmp_path, data))
    assert caught.value.exit_code == 2
    return {problem.path: str(problem) for problem in caught.value.problems}


# --- good tokens -------------------------------------------------------------------------------


def test_a_token_with_every_key(tmp_path: Path) -> None:
    hook = {"command": ["systemctl", "reload", "flux"], "webhook": {"env": "TEAMS_URL"}}
    body = token(
        rotator="rotator",
        lifetime="30d",
        rotate_before="7d",
        revoke_after="0s",
        jitter="6h",
        sinks=[
            dict(KV),
            {"kind": "variable_group", "project": "infra", "group": "gitops", "variable": "PAT"},
            {"kind": "file", "path": str(tmp_path / "pat"), "format": "env"},
        ],
        on_rotate=hook,
    )
    config = load_config(
        write(tmp_path, config_with({"flux-git": body}, rotation={"concurrency": 8}))
    )
    flux = config.tokens["flux-git"]
    assert isinstance(flux, TokenConfig)
    assert flux.scopes == ("vso.code",)
    assert (flux.lifetime, flux.rotate_before, flux.revoke_after, flux.jitter) == (
        timedelta(days=30),
        timedelta(days=7),
        timedelta(0),
        timedelta(hours=6),
    )
    assert flux.sinks[1]["group"] == "gitops"
    assert flux.on_rotate == hook
    assert config.rotation.concurrency == 8


def test_defaults(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, config_with({"t": {"scopes": ["vso.code"], "lifetime": "30d"}}))
    )
    t = config.tokens["t"]
    assert (t.organization, t.rotator, t.sinks, t.on_rotate, t.allow_full_access) == (
        None,
        None,
        (),
        None,
        False,
    )
    assert (t.rotate_before, t.revoke_after, t.jitter) == (
        timedelta(days=7),
        timedelta(days=1),
        timedelta(0),
    )
    assert config.rotation.concurrency == 64
    assert config.rotation.lock_timeout == timedelta(minutes=5)
    assert config.rotation.orphan_margin == timedelta(hours=1)


def test_full_access_is_accepted_when_allowed_explicitly(tmp_path: Path) -> None:
    body = token(scopes=["app_token"], allow_full_access=True)
    assert load_config(write(tmp_path, config_with({"t": body}))).tokens["t"].scopes == (
        "app_token",
    )


def test_several_organizations_and_their_tokens(tmp_path: Path) -> None:
    tokens = {
        "a": token(organization="contoso"),
        "b": token(organization="fabrikam", sinks=[{**KV, "secret": "b"}]),
    }
    data = config_with(tokens, organizations=["contoso", "fabrikam"])
    del data["organization"]
    config = load_config(write(tmp_path, data))
    assert [t.organization for t in config.tokens.values()] == ["contoso", "fabrikam"]


# --- every rule ------------------------------------------------------------------------------


def test_scopes_are_checked_against_the_known_list(tmp_path: Path) -> None:
    found = problems(
        tmp_path, config_with({"t": token(scopes=["vso.cod", "vso.pats", "app_token", "vso.work"])})
    )
    assert found == {
        "tokens.t.scopes[0]": "tokens.t.scopes[0]: unknown PAT scope 'vso.cod' — did you mean "
        "'vso.code'?",
        "tokens.t.scopes[1]": "tokens.t.scopes[1]: vso.pats is an Entra permission, not a PAT "
        "scope — list the PAT scopes the consumer needs, e.g. vso.code",
        "tokens.t.scopes[2]": "tokens.t.scopes[2]: app_token is full access to everything the "
        "rotator user can reach — list only the scopes the consumer needs; to accept the risk, "
        "set allow_full_access: true",
    }


def test_the_scope_list_matches_the_contract() -> None:
    contract = (DOCS / "azure-api-contract.md").read_text()
    section = contract[contract.index("### 7.1") : contract.index("### 7.2")]
    for scope in KNOWN_PAT_SCOPES:
        base = scope if scope == "app_token" else scope.split("_")[0]
        assert f"`{base}" in section, scope
    assert "vso.pats" not in KNOWN_PAT_SCOPES


def test_no_scopes_is_an_error(tmp_path: Path) -> None:
    found = problems(tmp_path, config_with({"t": token(scopes=[])}))
    assert list(found) == ["tokens.t.scopes"]


def test_global_pats_are_never_created(tmp_path: Path) -> None:
    found = problems(tmp_path, config_with({"t": token(all_orgs=True)}))
    assert found["tokens.t.all_orgs"].startswith(
        "tokens.t.all_orgs: global (all-organization) PATs are never created"
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"lifetime": "7d", "rotate_before": "7d"},
            "tokens.t.rotate_before: 7d is not shorter than lifetime 7d: every new PAT would be "
            "due at once",
        ),
        (
            {"lifetime": "7d", "rotate_before": "6d", "jitter": "1d"},
            "tokens.t.rotate_before: 6d + jitter 1d is not shorter than lifetime 7d",
        ),
        (
            {"lifetime": "5d"},  # the default rotate_before is 7d
            "tokens.t.rotate_before: 7d is not shorter than lifetime 5d",
        ),
    ],
)
def test_rotate_before_must_be_shorter_than_the_lifetime(
    tmp_path: Path, changes: dict[str, str], message: str
) -> None:
    found = problems(tmp_path, config_with({"t": token(**changes)}))
    assert found["tokens.t.rotate_before"].startswith(message)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "lifetime",
            "400d",
            "tokens.t.lifetime: 400d is longer than Azure DevOps allows — use at most 365d",
        ),
        ("lifetime", "0s", "tokens.t.lifetime: must be longer than zero"),
        ("lifetime", "a month", "tokens.t.lifetime: is not a duration — write a number and a unit"),
        ("rotate_before", "0d", "tokens.t.rotate_before: must be longer than zero"),
        ("revoke_after", "soon", "tokens.t.revoke_after: is not a duration"),
        ("jitter", 5, "tokens.t.jitter: must be a duration string"),
    ],
)
def test_durations(tmp_path: Path, key: str, value: Any, message: str) -> None:
    found = problems(tmp_path, config_with({"t": token(**{key: value})}))
    assert found[f"tokens.t.{key}"].startswith(message)


def test_zero_grace_and_zero_jitter_are_allowed(tmp_path: Path) -> None:
    body = token(revoke_after="0s", jitter="0s")
    assert load_config(write(tmp_path, config_with({"t": body}))).tokens[
        "t"
    ].revoke_after == timedelta(0)


def test_organization_must_be_configured(tmp_path: Path) -> None:
    found = problems(tmp_path, config_with({"t": token(organization="fabrikam")}))
    assert found["tokens.t.organization"] == (
        "tokens.t.organization: 'fabrikam' is not one of the configured organizations — use one "
        "of them, or add it to organizations: (configured organizations: contoso)"
    )


def test_organization_is_required_when_there_are_several(tmp_path: Path) -> None:
    data = config_with({"t": token()}, organizations=["contoso", "fabrikam"])
    del data["organization"]
    found = problems(tmp_path, data)
    assert found["tokens.t.organization"].startswith(
        "tokens.t.organization: required when the config lists several organizations — "
        "organization: contoso"
    )


def test_token_rotator_must_be_a_configured_user(tmp_path: Path) -> None:
    found = problems(
        tmp_path, config_with({"a": token(rotator="bob"), "b": token(rotator="writer", sinks=[])})
    )
    assert found["tokens.a.rotator"] == (
        "tokens.a.rotator: no identity named 'bob' — configured identities: rotator, writer"
    )
    assert found["tokens.b.rotator"].startswith(
        "tokens.b.rotator: identity 'writer' is a managed_identity: only a user can create PATs"
    )


def test_sink_identities_must_exist(tmp_path: Path) -> None:
    data = config_with(
        {
            "t": token(
                sinks=[
                    {**KV, "identity": "vault-writer"},
                    {"kind": "variable_group", "project": "p", "group": 1, "variable": "V"},
                ]
            )
        }
    )
    del data["identities"]["writer"]
    found = problems(tmp_path, data)
    assert found["tokens.t.sinks[0].identity"] == (
        "tokens.t.sinks[0].identity: no identity named 'vault-writer' — configured identities: "
        "rotator"
    )
    assert found["tokens.t.sinks[1].identity"] == (
        "tokens.t.sinks[1].identity: no identity named 'writer' (the default for this sink) — "
        "configured identities: rotator"
    )


def test_sink_entries_are_checked_against_their_kind(tmp_path: Path) -> None:
    sinks = [
        {"kind": "key_vualt", "secret": "x"},
        {"kind": "key_vault", "secret": "x"},
        {"kind": "file", "path": "/etc/pat", "formt": "raw"},
        {"kind": "key_vault", "vault_url": "http://kv.example", "secret": "y"},
        "not a mapping",
        {"path": "/etc/pat2"},
    ]
    found = problems(tmp_path, config_with({"t": token(sinks=sinks)}))
    assert found["tokens.t.sinks[0].kind"] == (
        "tokens.t.sinks[0].kind: unknown sink kind 'key_vualt' — did you mean 'key_vault'?"
    )
    assert found["tokens.t.sinks[1].vault_url"] == (
        "tokens.t.sinks[1].vault_url: required key is missing — see docs/sinks.md"
    )
    assert found["tokens.t.sinks[2].formt"] == (
        "tokens.t.sinks[2].formt: unknown key — did you mean 'format'?"
    )
    assert found["tokens.t.sinks[3].vault_url"].startswith(
        "tokens.t.sinks[3].vault_url: must be the vault's https:// URL without a path"
    )
    assert found["tokens.t.sinks[4]"].startswith("tokens.t.sinks[4]: must be a mapping")
    assert found["tokens.t.sinks[5]"].startswith("tokens.t.sinks[5]: needs a kind")


def test_two_tokens_may_not_write_to_one_place(tmp_path: Path) -> None:
    tokens = {
        "a": token(),
        "b": token(
            sinks=[{**KV, "vault_url": "https://OPS-kv.vault.azure.net/", "secret": "Flux-Git-Pat"}]
        ),
    }
    found = problems(tmp_path, config_with(tokens))
    assert found == {
        "tokens.b.sinks[0]": "tokens.b.sinks[0]: writes to the same place as tokens.a.sinks[0] "
        "— give each token (and each sink) its own secret, variable or file"
    }


@pytest.mark.parametrize(
    ("hook", "path", "message"),
    [
        (
            {"command": "systemctl reload x"},
            "tokens.t.on_rotate.command",
            "must be a list of arguments",
        ),
        (
            {"webhook": "http://hooks.example/x"},
            "tokens.t.on_rotate.webhook",
            "must be an https:// URL",
        ),
        ({"timeout": 5}, "tokens.t.on_rotate", "needs `command`, `webhook` or both"),
        (
            {"command": ["x"], "comand": ["y"]},
            "tokens.t.on_rotate.comand",
            "unknown key — did you mean 'command'?",
        ),
    ],
)
def test_hooks_are_checked(tmp_path: Path, hook: dict[str, Any], path: str, message: str) -> None:
    found = problems(tmp_path, config_with({"t": token(on_rotate=hook)}))
    assert message in found[path]


def test_token_names_must_fit_in_a_pat_display_name(tmp_path: Path) -> None:
    found = problems(tmp_path, config_with({"flux git": token(), "-x": token(sinks=[])}))
    assert set(found) == {"tokens.flux git", "tokens.-x"}
    assert "is not a valid token name" in found["tokens.flux git"]


def test_unknown_keys_and_rotation_settings(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        config_with({"t": token(lifetme="30d")}, rotation={"concurrency": 0, "lock_timeout": "x"}),
    )
    assert found["tokens.t.lifetme"] == "tokens.t.lifetme: unknown key — did you mean 'lifetime'?"
    assert found["rotation.concurrency"].startswith("rotation.concurrency: input should be greater")
    assert found["rotation.lock_timeout"].startswith("rotation.lock_timeout: is not a duration")


def test_every_problem_is_reported_together(tmp_path: Path) -> None:
    tokens = {
        "a": token(scopes=["vso.cod"], lifetime="3d"),
        "b": token(organization="nope", sinks=[{"kind": "file"}]),
    }
    found = problems(tmp_path, config_with(tokens))
    assert set(found) == {
        "tokens.a.scopes[0]",
        "tokens.a.rotate_before",
        "tokens.b.organization",
        "tokens.b.sinks[0].path",
    }


def test_a_readable_webhook_file_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url_file = tmp_path / "webhook-url"
    url_file.write_text("https://hooks.example/secret-path\n")
    url_file.chmod(0o644)
    body = token(on_rotate={"webhook": {"file": "webhook-url"}})
    with caplog.at_level(logging.WARNING):
        load_config(write(tmp_path, config_with({"t": body})))
    assert f"secret file {url_file} is accessible by group or others (mode 644)" in caplog.text
    assert "secret-path" not in caplog.text


# --- the JSON Schema ---------------------------------------------------------------------------


def _docs_example() -> dict[str, Any]:
    text = (DOCS / "configuration.md").read_text()
    block = re.search(r"## Example\n\n```yaml\n(.*?)```", text, re.S)
    assert block is not None
    data: dict[str, Any] = yaml.safe_load(block.group(1))
    return data


def test_the_schema_validates_the_documented_example(tmp_path: Path) -> None:
    example = _docs_example()
    assert example["tokens"], "the example shows managed tokens"
    schema = Config.model_json_schema()
    assert validate(example, schema) == []
    load_config(write(tmp_path, example))  # and the loader accepts it too


def test_the_schema_validates_the_emulator_example_with_tokens(tmp_path: Path) -> None:
    from patwarden_emulator.context import Emulator
    from patwarden_emulator.example_config import example_config

    emu = Emulator.open(state_dir=tmp_path, base_url="https://127.0.0.1:4443")
    try:
        document = example_config(
            emu, cache_key_file=tmp_path / "key", writer_secret_file=tmp_path / "secret"
        )
    finally:
        emu.store.close()
    document["tokens"] = {"demo": token(sinks=[{**KV, "vault_url": "https://127.0.0.1:4443"}])}
    assert validate(document, Config.model_json_schema()) == []


def test_the_schema_catches_what_the_model_refuses() -> None:
    schema = Config.model_json_schema()
    bad = {
        "organization": "contoso",
        "tokens": {
            "t": {"scopes": "vso.code", "lifetime": "thirty days", "sinks": [{"path": "/x"}]}
        },
        "rotation": {"concurrency": 300},
    }
    errors = validate(bad, schema)
    assert any(e.startswith("$.tokens.t.scopes: expected array") for e in errors)
    assert any(e.startswith("$.tokens.t.lifetime: 'thirty days' does not match") for e in errors)
    assert any(e.startswith("$.tokens.t.sinks[0]: missing 'kind'") for e in errors)
    assert any(e.startswith("$.rotation.concurrency: above 256") for e in errors)
    assert validate({"tokens": {"t": {"scopes": ["vso.code"], "lifetime": "30d", "x": 1}}}, schema)
