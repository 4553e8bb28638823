"""``patwarden notify test`` through the real CLI: a test message on every channel, a table of
results, exit 1 when one fails, exit 2 when none is configured."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.support import cli
from tests.conftest import RunningEmulator
from tests.support.configs import write_config
from tests.support.receivers import (
    SmtpReceiver,
    Tls,
    WebhookReceiver,
    make_tls,
    smtp_receiver,
    webhook_receiver,
)

KEY = {"NOTIFY_KEY": "notify-test-signing-key"}  # a test value, not a credential


@pytest.fixture
def receivers(tmp_path: Path) -> Iterator[tuple[Tls, WebhookReceiver, SmtpReceiver]]:
    tls = make_tls(tmp_path)
    with webhook_receiver(tls) as hooks, smtp_receiver(tls) as smtp:
        yield tls, hooks, smtp


def test_notify_test_reaches_every_channel(
    emulator: RunningEmulator,
    tmp_path: Path,
    receivers: tuple[Tls, WebhookReceiver, SmtpReceiver],
) -> None:
    tls, hooks, smtp = receivers
    ca = str(tls.ca_bundle)
    channels = [
        {
            "kind": "webhook",
            "url": hooks.url + "/hook",
            "secret": {"env": "NOTIFY_KEY"},
            "ca_bundle": ca,
        },
        {"kind": "teams", "name": "ops-teams", "url": hooks.url + "/teams", "ca_bundle": ca},
        {"kind": "slack", "url": hooks.url + "/slack", "ca_bundle": ca},
        {
            "kind": "email",
            "host": smtp.host,
            "port": smtp.port,
            "sender": "patwarden@example.com",
            "to": ["platform@example.com"],
            "ca_bundle": ca,
        },
        {"kind": "slack", "name": "broken", "url": hooks.url + "/missing"},  # CA not trusted
    ]
    config = write_config(emulator, tmp_path, notifications={"channels": channels})
    run = cli("notify", "test", "-o", "json", config=config, env=KEY)
    assert run.code == 1, run.output
    rows = {row["channel"]: row for row in json.loads(run.stdout)["channels"]}
    assert [
        rows[name]["result"] for name in ("webhook #1", "ops-teams", "slack #3", "email #4")
    ] == ["sent"] * 4
    assert rows["broken"]["result"] == "FAILED"
    assert "cannot reach the webhook" in rows["broken"]["detail"]
    assert [r.json()["phase"] for r in hooks.on("/hook")] == ["test"]
    assert len(hooks.on("/teams")) == 1
    assert len(hooks.on("/slack")) == 1
    (mail,) = smtp.messages
    assert mail["X-Patwarden-Phase"] == "test"
    assert "notify-test-signing-key" not in run.output


def test_notify_test_without_channels_says_how_to_add_one(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    run = cli("notify", "test", config=write_config(emulator, tmp_path))
    assert run.code == 2
    assert "no notification channels are configured" in run.stderr
    assert "notifications.channels" in run.stderr
