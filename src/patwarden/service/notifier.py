"""Send what the alert book says to every channel, and count it.

One failing channel never keeps a message from the others; its failure is logged (channel name
and reason, never the URL) and counted in ``patwarden_failures_total{kind="notification"}``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from patwarden.config.model import Config
from patwarden.config.refs import EnvRef, FileRef, KeyVaultRef
from patwarden.errors import PatwardenError
from patwarden.secret import Secret
from patwarden.service.alerts import AlertBook, Condition, Notice, conditions
from patwarden.service.channels import ChannelError, senders
from patwarden.service.logs import log_event
from patwarden.service.metrics import Counters
from patwarden.service.snapshot import Snapshot

__all__ = ["Notifier"]


class Notifier:
    """The channels of one configuration, its alert book, and the counters to bump."""

    def __init__(
        self,
        *,
        config: Config,
        resolve: Callable[[EnvRef | FileRef | KeyVaultRef], Secret],
        counters: Counters,
    ) -> None:
        self.config = config
        self.book = AlertBook.in_state_dir(
            config.state_dir, reminder_interval=config.notifications.reminder_interval
        )
        self._counters = counters
        self._channels = [
            (label, channel.kind, send)
            for (label, send), channel in zip(
                senders(config.notifications.channels, resolve=resolve),
                config.notifications.channels,
                strict=True,
            )
        ]

    def evaluate(self, snapshot: Snapshot, *, now: datetime) -> list[Notice]:
        """Send a message for every condition that started, lasts past a reminder, or ended."""
        found = conditions(
            snapshot, now=now, relogin_warnings=self.config.notifications.relogin_warnings
        )
        notices = self.book.update(found, now=now)
        for notice in notices:
            self.deliver(notice)
        return notices

    def deliver(self, notice: Notice) -> list[tuple[str, str | None]]:
        """Send *notice* on every channel; return (channel, error or None) per channel."""
        results: list[tuple[str, str | None]] = []
        condition = notice.condition
        for label, kind, send in self._channels:
            self._counters.add("patwarden_requests", kind)
            try:
                send(notice)
            except (ChannelError, PatwardenError) as err:
                self._counters.add("patwarden_failures", "notification")
                log_event(
                    "notification_failed",
                    f"{err.message}" + (f" ({err.hint})" if err.hint else ""),
                    channel=label,
                )
                results.append((label, err.message))
                continue
            self._counters.add("patwarden_notifications", label, notice.phase)
            log_event(
                "notified",
                f"{notice.phase}: {condition.title}",
                channel=label,
                token=condition.subject,
                outcome=condition.kind,
            )
            results.append((label, None))
        return results

    def send_test(self, *, now: datetime) -> list[tuple[str, str | None]]:
        """A test message on every channel (``patwarden notify test``)."""
        condition = Condition(
            kind="test",
            subject="patwarden",
            title="Test message from patwarden",
            detail="If you can read this, patwarden serve can reach this channel.",
            severity="info",
        )
        return self.deliver(Notice(condition=condition, phase="test", at=now, started_at=now))

    @property
    def labels(self) -> list[str]:
        """The channels, by label."""
        return [label for label, _, _ in self._channels]
