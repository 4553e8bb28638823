"""Notification channels: a generic webhook (JSON, HMAC-SHA256 signature), Microsoft Teams
(Workflows webhook with an Adaptive Card), Slack (incoming webhook) and email (SMTP, STARTTLS).

A channel's URL or password may be a secret reference; it is resolved when the message is sent
and never logged. A failure names the channel (``name`` or ``kind #index``), never its URL, which
for Teams and Slack is itself a credential. TLS is always verified (``ca_bundle`` adds a CA).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
from collections.abc import Callable, Sequence
from email.message import EmailMessage
from typing import Any

from patwarden.config.refs import EnvRef, FileRef, KeyVaultRef
from patwarden.config.service import EmailChannel, SlackChannel, TeamsChannel, WebhookChannel
from patwarden.errors import PatwardenError
from patwarden.secret import Secret
from patwarden.service.alerts import Notice

__all__ = [
    "SIGNATURE_HEADER",
    "ChannelError",
    "ChannelSpec",
    "Sender",
    "channel_label",
    "notice_document",
    "send",
]

SIGNATURE_HEADER = "X-Patwarden-Signature"
ChannelSpec = WebhookChannel | TeamsChannel | SlackChannel | EmailChannel
Resolver = Callable[[EnvRef | FileRef | KeyVaultRef], Secret]
Sender = Callable[[Notice], None]
_ICONS = {"started": "🔴", "reminder": "🟠", "resolved": "🟢", "test": "🔵"}


class ChannelError(PatwardenError):
    """A notification could not be delivered on one channel."""


def channel_label(channel: ChannelSpec, index: int) -> str:
    """``ops-teams`` (its name) or ``teams #2``."""
    return channel.name or f"{channel.kind} #{index + 1}"


def notice_document(notice: Notice) -> dict[str, Any]:
    """The JSON body of the generic webhook (and the facts of every other channel)."""
    condition = notice.condition
    return {
        "source": "patwarden",
        "phase": notice.phase,
        "condition": condition.kind,
        "key": condition.key,
        "subject": condition.subject,
        "severity": condition.severity,
        "title": condition.title,
        "detail": condition.detail,
        "fix": condition.fix,
        "level": condition.level,
        "at": notice.at.isoformat(),
        "started_at": notice.started_at.isoformat(),
    }


def _text(notice: Notice) -> str:
    condition = notice.condition
    head = f"{_ICONS.get(notice.phase, '')} [{notice.phase}] {condition.title}".strip()
    lines = [head, condition.detail]
    if condition.fix:
        lines.append(f"Fix: {condition.fix}")
    return "\n".join(lines)


def send(channel: ChannelSpec, index: int, notice: Notice, *, resolve: Resolver) -> None:
    """Deliver *notice* on *channel*.

    Raises:
        ChannelError: the receiver refused or could not be reached (the message says which
            channel and why, never the URL).
    """
    label = channel_label(channel, index)
    try:
        if isinstance(channel, EmailChannel):
            _email(channel, notice, resolve=resolve)
            return
        url = channel.url if isinstance(channel.url, str) else resolve(channel.url).reveal()
        if isinstance(channel, WebhookChannel):
            body = json.dumps(notice_document(notice), sort_keys=True).encode()
            headers = {"Content-Type": "application/json"}
            if channel.secret is not None:
                key = resolve(channel.secret).reveal().encode()
                digest = hmac.new(key, body, hashlib.sha256).hexdigest()
                headers[SIGNATURE_HEADER] = f"sha256={digest}"
        elif isinstance(channel, TeamsChannel):
            body = json.dumps(_adaptive_card(notice)).encode()
            headers = {"Content-Type": "application/json"}
        else:
            body = json.dumps({"text": _text(notice)}).encode()
            headers = {"Content-Type": "application/json"}
        _post(url, body, headers=headers, ca_bundle=channel.ca_bundle, label=label)
    except ChannelError:
        raise
    except PatwardenError as err:
        raise ChannelError(f"notification channel {label}: {err.message}", hint=err.hint) from None


def _post(url: str, body: bytes, *, headers: dict[str, str], ca_bundle: Any, label: str) -> None:
    import httpx

    from patwarden.tls import ssl_context

    try:
        with httpx.Client(verify=ssl_context(ca_bundle), timeout=15.0) as client:
            response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as err:
        raise ChannelError(
            f"notification channel {label}: cannot reach the webhook ({type(err).__name__})",
            hint="check the URL, the network and, for a private CA, the channel's ca_bundle",
        ) from None
    if response.status_code >= 300:
        raise ChannelError(
            f"notification channel {label}: the webhook answered HTTP {response.status_code}",
            hint="check that the webhook still exists and accepts this payload",
        )


def _adaptive_card(notice: Notice) -> dict[str, Any]:
    """A Teams Workflows message: one Adaptive Card (the Office 365 connectors are retired)."""
    condition = notice.condition
    facts = [
        {"title": "Phase", "value": notice.phase},
        {"title": "Condition", "value": condition.kind},
        {"title": "Subject", "value": condition.subject},
        {"title": "Since", "value": notice.started_at.isoformat()},
    ]
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "size": "Medium",
            "weight": "Bolder",
            "wrap": True,
            "text": f"{_ICONS.get(notice.phase, '')} {condition.title}".strip(),
            "color": "Good" if notice.phase == "resolved" else "Attention",
        },
        {"type": "TextBlock", "wrap": True, "text": condition.detail},
        {"type": "FactSet", "facts": facts},
    ]
    if condition.fix:
        body.append({"type": "TextBlock", "wrap": True, "text": f"**Fix:** {condition.fix}"})
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }


def _email(channel: EmailChannel, notice: Notice, *, resolve: Resolver) -> None:
    from patwarden.tls import ssl_context

    message = EmailMessage()
    message["Subject"] = f"[patwarden] {notice.condition.title}"
    message["From"] = channel.sender
    message["To"] = ", ".join(channel.to)
    message["X-Patwarden-Condition"] = notice.condition.key
    message["X-Patwarden-Phase"] = notice.phase
    message.set_content(_text(notice) + f"\n\nSince: {notice.started_at.isoformat()}\n")
    verify = ssl_context(channel.ca_bundle)
    context = verify if isinstance(verify, ssl.SSLContext) else ssl.create_default_context()
    label = f"email {channel.host}:{channel.port}"
    try:
        with smtplib.SMTP(channel.host, channel.port, timeout=channel.timeout) as smtp:
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                raise ChannelError(
                    f"notification channel {label}: the server does not offer STARTTLS",
                    hint="patwarden sends mail only over TLS; use the server's submission port",
                )
            smtp.starttls(context=context)
            smtp.ehlo()
            if channel.username:
                password = resolve(channel.password).reveal() if channel.password else ""
                smtp.login(channel.username, password)
            smtp.send_message(message)
    except ChannelError:
        raise
    except (OSError, smtplib.SMTPException) as err:
        raise ChannelError(
            f"notification channel {label}: {type(err).__name__} while sending",
            hint="check host, port, STARTTLS, the CA (ca_bundle) and the credentials",
        ) from None


def senders(channels: Sequence[ChannelSpec], *, resolve: Resolver) -> list[tuple[str, Sender]]:
    """One (label, send) pair per configured channel."""

    def bind(channel: ChannelSpec, index: int) -> Sender:
        return lambda notice: send(channel, index, notice, resolve=resolve)

    return [(channel_label(c, i), bind(c, i)) for i, c in enumerate(channels)]
