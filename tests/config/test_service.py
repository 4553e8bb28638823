"""The ``service:`` and ``notifications:`` sections: defaults, every problem with its key path and
fix, secrets only by reference, and both in ``patwarden config schema``."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from patwarden.config.model import load_config
from patwarden.config.problems import InvalidConfig
from patwarden.config.refs import EnvRef

BASE = """\
organization: contoso
azure: {tenant_id: 72f988bf-86f1-41af-91ab-2d7cd011db47}
identities:
  rotator: {kind: user, client_id: 11111111-2222-3333-4444-555555555555}
"""


def write(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "patwarden.yaml"
    path.write_text(BASE + extra)
    path.chmod(0o600)
    return path


def problems(tmp_path: Path, extra: str) -> list[str]:
    with pytest.raises(InvalidConfig) as caught:
        load_config(write(tmp_path, extra))
    return [str(p) for p in caught.value.problems]


def test_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    assert config.service.listen == "127.0.0.1:9464"
    assert config.service.check_interval == timedelta(minutes=15)
    assert config.service.bearer_token is None
    assert config.notifications.channels == ()
    assert config.notifications.relogin_warnings == (
        timedelta(days=14),
        timedelta(days=7),
        timedelta(days=1),
    )


def test_channels_parse_with_references(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """\
service: {listen: "0.0.0.0:9464", bearer_token: {env: PATWARDEN_METRICS}, check_interval: 5m}
notifications:
  expiry_warning: 3d
  relogin_warnings: [10d, 2d]
  channels:
    - {kind: webhook, url: "https://hooks.example.com/p", secret: {env: HOOK_KEY}}
    - {kind: teams, url: {env: TEAMS_URL}}
    - {kind: slack, name: ops, url: {file: slack-url}}
    - {kind: email, host: smtp.example.com, sender: p@example.com, to: [ops@example.com]}
""",
        )
    )
    kinds = [c.kind for c in config.notifications.channels]
    assert kinds == ["webhook", "teams", "slack", "email"]
    assert config.notifications.channels[1].url == EnvRef(env="TEAMS_URL")  # type: ignore[union-attr]
    assert config.notifications.relogin_warnings == (timedelta(days=10), timedelta(days=2))
    assert config.service.check_interval == timedelta(minutes=5)


def test_a_non_loopback_listen_needs_authentication(tmp_path: Path) -> None:
    (found,) = problems(tmp_path, 'service: {listen: "0.0.0.0:9464"}\n')
    assert found.startswith("service.listen: 0.0.0.0:9464 accepts connections from other machines")
    assert "service.bearer_token" in found
    assert "client_ca" in found


def test_every_problem_has_its_key_path(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
service: {check_interval: soon, backoff_min: 2h, backoff_max: 1h, lisen: x}
notifications:
  channels:
    - {kind: pager, url: "https://x.example.com"}
    - {kind: webhook, url: "http://plain.example.com"}
    - {kind: slack, url: "https://hooks.slack.com/services/T/B/literal"}
    - {kind: email, host: smtp.example.com, sender: nobody, to: []}
    - {kind: webhook, url: "https://x.example.com", secret: literal-key}
""",
    )
    paths = sorted(line.split(":")[0] for line in found)
    assert paths == sorted(
        [
            "service.check_interval",
            "service.lisen",
            "service.backoff_max",
            "notifications.channels[0]",
            "notifications.channels[1].url",
            "notifications.channels[3].sender",
            "notifications.channels[3].to",
            "notifications.channels[4].secret",
        ]
    ), found
    assert all(" — " in line for line in found), found  # each with a fix
    assert not any("literal-key" in line for line in found)  # a secret is never echoed


def test_config_schema_includes_the_sections() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "patwarden", "config", "schema"],
        capture_output=True,
        text=True,
        check=True,
    )
    schema = json.loads(result.stdout)
    assert {"service", "notifications"} <= set(schema["properties"])
    service = schema["$defs"]["ServiceConfig"]["properties"]
    assert service["check_interval"]["default"] == "15m"
    assert service["listen"]["default"] == "127.0.0.1:9464"
    channels = json.dumps(schema["$defs"]["NotificationsConfig"])
    for kind in ("WebhookChannel", "TeamsChannel", "SlackChannel", "EmailChannel"):
        assert kind in channels
