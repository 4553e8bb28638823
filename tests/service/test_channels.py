"""Every channel against a real local receiver: HTTPS webhooks (generic with its HMAC signature,
Teams with an Adaptive Card, Slack) and SMTP with STARTTLS (aiosmtpd), each with its own CA."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from patwarden.config.refs import EnvRef
from patwarden.config.service import EmailChannel, SlackChannel, TeamsChannel, WebhookChannel
from patwarden.secret import Secret
from patwarden.service.alerts import Condition, Notice
from patwarden.service.channels import SIGNATURE_HEADER, ChannelError, send
from tests.support.clock import now
from tests.support.receivers import (
    SmtpReceiver,
    Tls,
    WebhookReceiver,
    make_tls,
    smtp_receiver,
    webhook_receiver,
)

KEY = "hook-signing-key"  # a test value, not a credential


@pytest.fixture
def tls(tmp_path: Path) -> Tls:
    return make_tls(tmp_path)


@pytest.fixture
def hooks(tls: Tls) -> Iterator[WebhookReceiver]:
    with webhook_receiver(tls) as receiver:
        yield receiver


@pytest.fixture
def smtp(tls: Tls) -> Iterator[SmtpReceiver]:
    with smtp_receiver(tls) as receiver:
        yield receiver


def resolve(ref: object) -> Secret:
    assert isinstance(ref, EnvRef)
    return Secret({"HOOK_KEY": KEY, "SLACK_URL": SLACK_URL[0]}[ref.env])


SLACK_URL = [""]


def notice() -> Notice:
    at = now()
    condition = Condition(
        kind="rotation_failed",
        subject="flux-git",
        title="Rotation of flux-git failed",
        detail="Key Vault refused the write",
        fix="grant the writer Key Vault Secrets Officer",
        severity="critical",
    )
    return Notice(condition=condition, phase="started", at=at, started_at=at - timedelta(minutes=1))


def test_generic_webhook_posts_json_signed_with_hmac_sha256(
    hooks: WebhookReceiver, tls: Tls
) -> None:
    channel = WebhookChannel(
        kind="webhook",
        url=hooks.url + "/hook",
        secret=EnvRef(env="HOOK_KEY"),
        ca_bundle=tls.ca_bundle,
    )
    send(channel, 0, notice(), resolve=resolve)
    (got,) = hooks.on("/hook")
    expected = hmac.new(KEY.encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers[SIGNATURE_HEADER] == f"sha256={expected}"
    document = got.json()
    assert document["condition"] == "rotation_failed"
    assert document["phase"] == "started"
    assert document["key"] == "rotation_failed:flux-git"
    assert document["fix"] == "grant the writer Key Vault Secrets Officer"


def test_teams_gets_an_adaptive_card(hooks: WebhookReceiver, tls: Tls) -> None:
    channel = TeamsChannel(kind="teams", url=hooks.url + "/teams", ca_bundle=tls.ca_bundle)
    send(channel, 0, notice(), resolve=resolve)
    (got,) = hooks.on("/teams")
    (attachment,) = got.json()["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    texts = [block.get("text", "") for block in card["body"]]
    assert any("Rotation of flux-git failed" in text for text in texts)
    assert any("Key Vault Secrets Officer" in text for text in texts)


def test_slack_url_may_be_a_reference_and_never_shows_in_an_error(
    hooks: WebhookReceiver, tls: Tls
) -> None:
    SLACK_URL[0] = hooks.url + "/slack/T000/B000/secretpart"
    channel = SlackChannel(kind="slack", url=EnvRef(env="SLACK_URL"), ca_bundle=tls.ca_bundle)
    send(channel, 0, notice(), resolve=resolve)
    (got,) = hooks.on("/slack/T000/B000/secretpart")
    assert "Rotation of flux-git failed" in got.json()["text"]
    hooks.status = 404
    with pytest.raises(ChannelError) as caught:
        send(channel, 2, notice(), resolve=resolve)
    assert "slack #3" in caught.value.message
    assert "HTTP 404" in caught.value.message
    assert "secretpart" not in str(caught.value)


def test_a_webhook_with_an_untrusted_certificate_is_refused(hooks: WebhookReceiver) -> None:
    channel = WebhookChannel(kind="webhook", name="ops", url=hooks.url + "/hook")
    with pytest.raises(ChannelError, match="notification channel ops: cannot reach"):
        send(channel, 0, notice(), resolve=resolve)
    assert hooks.requests == []


def test_email_goes_over_starttls(smtp: SmtpReceiver, tls: Tls) -> None:
    channel = EmailChannel(
        kind="email",
        host=smtp.host,
        port=smtp.port,
        sender="patwarden@example.com",
        to=("platform@example.com",),
        ca_bundle=tls.ca_bundle,
    )
    send(channel, 0, notice(), resolve=resolve)
    (message,) = smtp.messages
    assert smtp.tls_sessions == [True]
    assert message["Subject"] == "[patwarden] Rotation of flux-git failed"
    assert message["X-Patwarden-Condition"] == "rotation_failed:flux-git"
    assert "grant the writer Key Vault Secrets Officer" in message.get_payload()
