"""The ``service:`` and ``notifications:`` sections: how ``patwarden serve`` runs and who it tells.

``service`` says where the HTTP endpoints listen (loopback by default), how often every token's
desired state is checked, how often every identity's sign-in is checked (for the rotator that
redeems its refresh token, which keeps the 90-day inactivity window open), and how failures back
off. A non-loopback ``listen`` needs ``bearer_token`` or ``tls.client_ca``
(mTLS): :mod:`patwarden.config.service_checks` reports it with its key path and fix.

``notifications`` lists the channels (a generic webhook signed with HMAC-SHA256, Microsoft Teams
Workflows, Slack, email over SMTP with STARTTLS) and when to warn. Webhook URLs of Teams and Slack
carry their own credential, so each may be written as a reference (``{env: NAME}``,
``{file: PATH}``) instead of the URL itself. The reference is ``docs/service.md``.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from patwarden.config.refs import ConfigPath, HttpsUrl, SecretRef, StrictModel
from patwarden.config.tokens import NonNegativeDuration, PositiveDuration

__all__ = [
    "CHANNEL_MODELS",
    "CHANNEL_TAGS",
    "DEFAULT_LISTEN",
    "EmailChannel",
    "NotificationsConfig",
    "ServiceConfig",
    "ServiceTls",
    "SlackChannel",
    "TeamsChannel",
    "WebhookChannel",
    "is_loopback",
    "split_listen",
]

DEFAULT_LISTEN = "127.0.0.1:9464"
_LISTEN_PATTERN = r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$"


def _duration_default(value: timedelta, text: str) -> Any:
    return Field(default=value, json_schema_extra={"default": text})


class ServiceTls(StrictModel):
    """HTTPS for the endpoints; with ``client_ca`` every client must show a certificate (mTLS)."""

    certificate: ConfigPath = Field(examples=["/etc/patwarden/serve.pem"])
    key: ConfigPath = Field(examples=["/etc/patwarden/serve.key"])
    client_ca: ConfigPath | None = Field(default=None, examples=["/etc/patwarden/clients-ca.pem"])


class ServiceConfig(StrictModel):
    """How ``patwarden serve`` runs (``service:``)."""

    listen: str = Field(default=DEFAULT_LISTEN, pattern=_LISTEN_PATTERN, examples=[DEFAULT_LISTEN])
    bearer_token: SecretRef | None = Field(default=None, examples=[{"env": "PATWARDEN_METRICS"}])
    tls: ServiceTls | None = None
    check_interval: PositiveDuration = _duration_default(timedelta(minutes=15), "15m")
    check_jitter: NonNegativeDuration = _duration_default(timedelta(minutes=1), "1m")
    sign_in_check: PositiveDuration = _duration_default(timedelta(hours=1), "1h")
    backoff_min: PositiveDuration = _duration_default(timedelta(minutes=1), "1m")
    backoff_max: PositiveDuration = _duration_default(timedelta(hours=1), "1h")
    shutdown_timeout: PositiveDuration = _duration_default(timedelta(seconds=30), "30s")
    audit_events: int = Field(default=50, ge=0, le=1000)


# --- notification channels ---------------------------------------------------------------------


class _UrlBranch(StrictModel):
    """Stands for a branch of :data:`UrlOrRef` in key paths (the tags are dropped from them)."""


def _url_tag(value: Any) -> str:
    return "url=https" if isinstance(value, str) else "url=ref"


# A webhook URL as written (https://…) or, since Teams and Slack URLs are credentials, a reference.
UrlOrRef = Annotated[
    Annotated[HttpsUrl, Tag("url=https")] | Annotated[SecretRef, Tag("url=ref")],
    Discriminator(_url_tag),
]
URL_TAGS: dict[str, type[StrictModel]] = {"url=https": _UrlBranch, "url=ref": _UrlBranch}


class WebhookChannel(StrictModel):
    """A JSON POST signed with ``X-Patwarden-Signature: sha256=<HMAC of the body>``."""

    kind: Literal["webhook"]
    name: str | None = None
    url: UrlOrRef = Field(examples=["https://alerts.example.com/patwarden"])
    secret: SecretRef | None = Field(default=None, examples=[{"env": "PATWARDEN_WEBHOOK_KEY"}])
    ca_bundle: ConfigPath | None = None


class TeamsChannel(StrictModel):
    """A Microsoft Teams Workflows webhook ("When a Teams webhook request is received")."""

    kind: Literal["teams"]
    name: str | None = None
    url: UrlOrRef = Field(examples=[{"env": "PATWARDEN_TEAMS_URL"}])
    ca_bundle: ConfigPath | None = None


class SlackChannel(StrictModel):
    """A Slack incoming webhook."""

    kind: Literal["slack"]
    name: str | None = None
    url: UrlOrRef = Field(examples=[{"env": "PATWARDEN_SLACK_URL"}])
    ca_bundle: ConfigPath | None = None


class EmailChannel(StrictModel):
    """Email over SMTP; STARTTLS is required (the certificate is verified)."""

    kind: Literal["email"]
    name: str | None = None
    host: str = Field(min_length=1, examples=["smtp.example.com"])
    port: int = Field(default=587, ge=1, le=65535)
    sender: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", examples=["patwarden@example.com"])
    to: tuple[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")], ...] = Field(
        min_length=1, examples=[["platform@example.com"]]
    )
    username: str | None = None
    password: SecretRef | None = Field(default=None, examples=[{"env": "PATWARDEN_SMTP_PASSWORD"}])
    ca_bundle: ConfigPath | None = None
    timeout: float = Field(default=30.0, gt=0, le=300)


CHANNEL_MODELS: dict[str, type[StrictModel]] = {
    "webhook": WebhookChannel,
    "teams": TeamsChannel,
    "slack": SlackChannel,
    "email": EmailChannel,
}


def _channel_tag(value: Any) -> str | None:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return f"channel={kind}" if isinstance(kind, str) and kind in CHANNEL_MODELS else None


Channel = Annotated[
    Annotated[WebhookChannel, Tag("channel=webhook")]
    | Annotated[TeamsChannel, Tag("channel=teams")]
    | Annotated[SlackChannel, Tag("channel=slack")]
    | Annotated[EmailChannel, Tag("channel=email")],
    Discriminator(
        _channel_tag,
        custom_error_type="channel_kind",
        custom_error_message="unknown channel kind (webhook, teams, slack, email)",
    ),
]
CHANNEL_TAGS: dict[str, type[StrictModel]] = {
    **{f"channel={kind}": model for kind, model in CHANNEL_MODELS.items()},
    **URL_TAGS,
}


class NotificationsConfig(StrictModel):
    """Who ``patwarden serve`` tells about trouble, and when (``notifications:``)."""

    channels: tuple[Channel, ...] = ()
    expiry_warning: PositiveDuration = _duration_default(timedelta(days=7), "7d")
    relogin_warnings: tuple[PositiveDuration, ...] = Field(
        default=(timedelta(days=14), timedelta(days=7), timedelta(days=1)),
        json_schema_extra={"default": ["14d", "7d", "1d"]},
    )
    reminder_interval: PositiveDuration = _duration_default(timedelta(days=1), "1d")


# --- cross-checks ------------------------------------------------------------------------------


def split_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:9464"`` → ``("127.0.0.1", 9464)``; ``"[::1]:9464"`` → ``("::1", 9464)``."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    """Whether *host* only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
