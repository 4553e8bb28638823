"""The process of ``patwarden serve``: logging, leadership, the endpoints, signals, shutdown.

The scheduler runs in its own thread; the main thread handles signals. SIGTERM (or SIGINT) stops
taking new work and gives the in-flight batch ``service.shutdown_timeout`` to finish; if it does
not, the process exits anyway — every step was journaled before it ran, so the next start resumes
it, exactly as after a crash. SIGHUP reloads the configuration. The exit code after a stop is 0.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import cast

from patwarden import tls
from patwarden.app.context import AppContext
from patwarden.config.model import load_config
from patwarden.config.service import ServiceConfig, is_loopback, split_listen
from patwarden.errors import ConfigError
from patwarden.secret import Secret
from patwarden.service import logs
from patwarden.service.http import Endpoints, HttpServer
from patwarden.service.leadership import Leadership
from patwarden.service.logs import log_event
from patwarden.service.metrics import build_registry, render_metrics
from patwarden.service.scheduler import Service

__all__ = ["run_service", "service_settings"]


def service_settings(app: AppContext, listen: str | None) -> ServiceConfig:
    """``service:`` of the config, with ``--listen`` applied and checked like the config is.

    Raises:
        ConfigError: ``--listen`` is not HOST:PORT, or binds beyond loopback without
            ``service.bearer_token`` or mTLS.
    """
    settings = app.config.service
    if listen is None:
        return settings
    try:
        host, _port = split_listen(listen)
    except ValueError:
        raise ConfigError(
            f"--listen {listen!r} is not HOST:PORT", hint="e.g. --listen 127.0.0.1:9464"
        ) from None
    protected = settings.bearer_token is not None or (
        settings.tls is not None and settings.tls.client_ca is not None
    )
    if not is_loopback(host) and not protected:
        raise ConfigError(
            f"--listen {listen} accepts connections from other machines, but nothing "
            "authenticates them",
            hint="set service.bearer_token or service.tls.client_ca in the config, or listen "
            "on 127.0.0.1",
        )
    return settings.model_copy(update={"listen": listen})


def _bearer(app: AppContext) -> Secret | None:
    from patwarden.identity.secret_refs import resolve_secret

    ref = app.config.service.bearer_token
    if ref is None:
        return None
    return resolve_secret(ref, credentials=app.credentials, azure=app.config.azure)


def run_service(
    app: AppContext, *, listen: str | None, log_format: str, debug: bool = False
) -> int:
    """Serve until SIGTERM/SIGINT; return the exit code (0).

    Raises:
        ConfigError: invalid config, ``--listen`` or TLS settings, or the address is taken.
        StateError: the state store cannot be opened.
    """
    logs.configure(log_format, debug=debug)
    settings = service_settings(app, listen)
    app.state_store().close()  # a damaged or newer state file stops the service up front
    # Replicas on a shared state (PostgreSQL) elect a leader through the state itself, and its
    # stores are fenced by the leader's epoch; otherwise a lock file beside state_path.
    shared = app.leadership()
    # Service is duck-typed on patwarden.rotation.ports.Leadership (this file lock is one too).
    leadership = cast(Leadership, shared) if shared else Leadership(app.state_path)

    def load() -> AppContext:
        fresh = AppContext(config=load_config(app.config_path), clock=app.clock)
        fresh.adopt_leadership(shared)  # a reload keeps the same lease and fencing
        return fresh

    service = Service(context=app, load=load, leadership=leadership)
    registry = build_registry(service.snapshot, service.counters)
    server = HttpServer(
        settings,
        Endpoints(
            snapshot=service.snapshot,
            metrics=lambda: render_metrics(registry),
            bearer_token=_bearer(app),
        ),
    )
    server.start()
    log_event("serving", f"serving on {server.address} (state {app.state_where})")

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            log_event("reload", "SIGHUP: reloading the configuration before the next pass")
            service.reload()
        else:
            log_event("stopping", f"{signal.Signals(signum).name}: taking no new work")
            service.stop()

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, on_signal)
    worker = threading.Thread(target=service.run, name="patwarden-scheduler", daemon=True)
    worker.start()
    while worker.is_alive() and not service.stopping.is_set():
        worker.join(0.5)
    deadline = service.runtime.config.service.shutdown_timeout.total_seconds()
    worker.join(deadline)
    if worker.is_alive():
        log_event(
            "stopped",
            f"the in-flight step did not finish within {deadline:.0f} s; it stays journaled "
            "and resumes at the next start",
            level=logging.WARNING,
        )
        leadership.release()
        tls.remove_files()  # os._exit runs no atexit handlers
        logging.shutdown()
        sys.stderr.flush()
        os._exit(0)
    server.stop()
    service.close()
    log_event("stopped", "stopped cleanly")
    return 0
