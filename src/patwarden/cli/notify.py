"""``patwarden notify test``: send a test message to every notification channel."""

from __future__ import annotations

import click

from patwarden.cli.options import app_context, config_option
from patwarden.cli.output import Column, emit, output_option

COLUMNS = (
    Column(key="channel", header="channel", no_wrap=True),
    Column(key="result", header="result", styles={"sent": "green", "FAILED": "bold red"}),
    Column(key="detail", header="detail"),
)


@click.group("notify")
def notify() -> None:
    """Notification channels of `patwarden serve` (notifications: in the config)."""


@notify.command("test")
@config_option()
@output_option()
@click.pass_context
def test(ctx: click.Context, config_path: str | None, output: str | None) -> None:
    """Send a test message to every channel; exit 1 if any failed, 2 if none is configured."""
    from patwarden.errors import ConfigError
    from patwarden.identity.secret_refs import resolve_secret
    from patwarden.service import logs
    from patwarden.service.metrics import Counters
    from patwarden.service.notifier import Notifier

    app = app_context(config_path)
    config = app.config
    if not config.notifications.channels:
        raise ConfigError(
            "no notification channels are configured",
            hint="add notifications.channels (webhook, teams, slack or email); see docs/service.md",
        )
    logs.configure("human")
    logging_quiet()
    notifier = Notifier(
        config=config,
        resolve=lambda ref: resolve_secret(ref, credentials=app.credentials, azure=config.azure),
        counters=Counters(),
    )
    results = notifier.send_test(now=app.clock.now())
    rows = [
        {"channel": label, "result": "FAILED" if error else "sent", "detail": error or ""}
        for label, error in results
    ]
    emit(rows, columns=COLUMNS, output=output, document={"channels": rows})
    ctx.exit(1 if any(error for _, error in results) else 0)


def logging_quiet() -> None:
    """The table says what happened; the per-channel log lines would repeat it."""
    import logging

    logging.getLogger("patwarden.service").setLevel(logging.WARNING)
