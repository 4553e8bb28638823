"""The emulator's business clock: what "now" is for the Azure DevOps it emulates.

PAT validity (``validFrom``/``validTo``, expiry on use, policy clamping), Token Admin's
``isValid`` and variable-group stamps read :func:`now`. It is the wall clock unless it was moved:
``patwarden emulator --now 2027-06-01T00:00:00Z`` starts it at a given date, and
``PUT /_admin/clock`` (``{"now": "<ISO-8601>"}`` or ``{"offset_seconds": <float>}``) moves it while
serving, so that a config's schedules, grace periods and expiry findings can be tried at any date.
The clock keeps running from there; ``POST /_admin/reset`` does not move it back.

Entra ID tokens, device codes and Key Vault keep the wall clock: the real clients (MSAL,
azure-identity) check token lifetimes against theirs.
"""

from __future__ import annotations

import datetime as dt
import threading

_lock = threading.Lock()
_offset = dt.timedelta(0)


def now() -> dt.datetime:
    """The emulated Azure DevOps' current time (UTC, aware)."""
    return dt.datetime.now(dt.UTC) + offset()


def offset() -> dt.timedelta:
    """How far the business clock is ahead of the wall clock (negative: behind)."""
    with _lock:
        return _offset


def move_to(at: dt.datetime) -> None:
    """Make :func:`now` read *at* (aware) from this moment on."""
    if at.tzinfo is None:
        raise ValueError("the emulator clock needs an aware time (e.g. ending in Z)")
    set_offset(at - dt.datetime.now(dt.UTC))


def set_offset(value: dt.timedelta) -> None:
    """Run the business clock *value* ahead of the wall clock."""
    global _offset
    with _lock:
        _offset = value
