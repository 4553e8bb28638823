"""The ``serve`` process's signal inbox: handlers that only record, signals acted on by the main
thread (a handler that acted deadlocked ``serve``; see tests/cli/test_serve.py for the process)."""

from __future__ import annotations

import os
import signal
import threading

from patwarden.service.process import SignalInbox


def test_signals_wait_in_the_inbox_first_arrival_first_repeats_once() -> None:
    before = signal.getsignal(signal.SIGHUP)
    with SignalInbox(signal.SIGHUP, signal.SIGUSR1) as inbox:
        assert inbox.wait(0.01) == []
        os.kill(os.getpid(), signal.SIGUSR1)
        for _ in range(3):
            os.kill(os.getpid(), signal.SIGHUP)
        assert inbox.wait(5) == [signal.SIGUSR1, signal.SIGHUP]
        assert inbox.wait(0.01) == []
    assert signal.getsignal(signal.SIGHUP) is before


def test_a_flood_that_fills_the_wakeup_socket_loses_no_signal() -> None:
    with SignalInbox(signal.SIGHUP, signal.SIGUSR1) as inbox:
        for _ in range(300_000):  # a byte each: more than a socket buffer holds
            os.kill(os.getpid(), signal.SIGHUP)
        os.kill(os.getpid(), signal.SIGUSR1)
        assert inbox.wait(5) == [signal.SIGHUP, signal.SIGUSR1]
        assert inbox.wait(0.01) == [], "the socket was drained"


def test_wait_wakes_at_a_signal_sent_from_another_thread() -> None:
    with SignalInbox(signal.SIGUSR1) as inbox:
        sender = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGUSR1))
        sender.start()
        try:
            assert inbox.wait(30) == [signal.SIGUSR1]
        finally:
            sender.join()
