"""The process of ``patwarden serve``: logging, leadership, the endpoints, signals, shutdown.

The scheduler runs in its own thread; the main thread handles signals. SIGTERM (or SIGINT) stops
taking new work and gives the in-flight batch ``service.shutdown_timeout`` to finish; if it does
not, the process exits anyway — every step was journaled before it ran, so the next start resumes
it, exactly as after a crash. SIGHUP reloads the configuration. The exit code after a stop is 0.
The main thread reads signals from a :class:`SignalInbox`; no handler acts on one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import sys
import threading
from types import FrameType
from typing import Any, cast

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

__all__ = ["SignalInbox", "run_service", "service_settings"]


class SignalInbox:
    """The signals a process receives, for its main thread to act on when it chooses.

    A Python signal handler runs in the main thread between two bytecodes, possibly inside a
    lock that thread holds. A handler that set a :class:`threading.Event` deadlocked ``serve``
    when a second SIGTERM arrived while the first one's ``Event.set`` held the event's lock, and
    one that logged could re-enter the log stream's writer. So the handler here only records the
    signal (one dict store, no lock); the interpreter's C-level handler also writes to a socket
    (:func:`signal.set_wakeup_fd`), which only wakes :meth:`wait` up: that socket can fill and
    drop bytes under a flood, the record cannot. Repeats of a signal not yet read count once,
    as POSIX delivers them. Main thread only; leaving the block restores the previous handlers.
    """

    def __init__(self, *signums: signal.Signals) -> None:
        self._signums = signums
        self._received: dict[int, None] = {}  # insertion-ordered: first arrival first
        self._reader, self._writer = socket.socketpair()
        self._previous: dict[signal.Signals, Any] = {}
        self._previous_fd = -1

    def __enter__(self) -> SignalInbox:
        for end in (self._reader, self._writer):
            end.setblocking(False)
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        for signum in self._signums:
            self._previous[signum] = signal.signal(signum, self._record)
        return self

    def _record(self, signum: int, _frame: FrameType | None) -> None:
        self._received[signum] = None

    def wait(self, timeout: float) -> list[int]:
        """The signals received since the last call, waiting up to *timeout* s for one."""
        if not self._received:
            select.select([self._reader], [], [], timeout)
        with contextlib.suppress(BlockingIOError):
            while self._reader.recv(4096):
                pass
        received, self._received = self._received, {}
        return list(received)

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        signal.set_wakeup_fd(self._previous_fd)
        self._reader.close()
        self._writer.close()


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
    # From here to the end: a signal during start-up waits in the inbox instead of killing the
    # process (SIGHUP's default) or being lost; the loop below reads it.
    with SignalInbox(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as inbox:
        return _serve(app, settings, inbox)


def _serve(app: AppContext, settings: ServiceConfig, inbox: SignalInbox) -> int:
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

    def on_signal(signum: int) -> None:
        if signum == signal.SIGHUP:
            log_event("reload", "SIGHUP: reloading the configuration before the next pass")
            service.reload()
        else:
            log_event("stopping", f"{signal.Signals(signum).name}: taking no new work")
            service.stop()

    worker = threading.Thread(target=service.run, name="patwarden-scheduler", daemon=True)
    worker.start()
    while worker.is_alive() and not service.stopping.is_set():
        for signum in inbox.wait(0.5):
            on_signal(signum)
    deadline = service.runtime.config.service.shutdown_timeout.total_seconds()
    worker.join(deadline)  # signals from here on are left unread: we are stopping
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
