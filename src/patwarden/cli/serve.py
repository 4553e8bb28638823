"""``patwarden serve``: the unattended service (scheduler, health, metrics, notifications, status).

Thin: the work is in :mod:`patwarden.service`; see docs/service.md.
"""

from __future__ import annotations

import click

from patwarden.cli.options import app_context, config_option

LOG_FORMATS = ("human", "json")


@click.command("serve")
@config_option()
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="Where the endpoints listen (default: service.listen in the config, else "
    "127.0.0.1:9464; port 0 picks a free one).",
)
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    default="human",
    show_default=True,
    help="Human lines, or one JSON object per line (token, operation id, event, outcome).",
)
@click.pass_context
def serve(ctx: click.Context, config_path: str | None, listen: str | None, log_format: str) -> None:
    """Run unattended: rotate every token when due, repair, notify, serve health and metrics.

    Endpoints: /healthz, /readyz, /metrics (Prometheus) and / (a status page). SIGTERM stops
    after the in-flight step (exit 0); SIGHUP reloads the config (an invalid one is reported and
    the old one kept). One instance leads a state; another stands by. See docs/service.md.
    """
    from patwarden.service.process import run_service

    app = app_context(config_path)
    debug = bool(ctx.find_root().params.get("debug"))
    ctx.exit(run_service(app, listen=listen, log_format=log_format, debug=debug))
