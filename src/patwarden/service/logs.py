"""The service's log lines: human lines on a terminal, JSON lines with ``--log-format json``.

Every line may carry ``event``, ``token``, ``operation_id``, ``outcome`` and ``identity`` (given
through :func:`log_event`). Messages come from patwarden's own errors and outcomes, which never
hold a secret; the formatter adds nothing else.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = ["FIELDS", "LOG_FORMATS", "HumanFormatter", "JsonFormatter", "configure", "log_event"]

LOG_FORMATS = ("human", "json")
FIELDS = ("event", "token", "identity", "operation_id", "outcome", "channel")
_log = logging.getLogger("patwarden.service")


def log_event(event: str, message: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log *message* as service event *event* with the given fields (None values dropped)."""
    extra = {key: value for key, value in fields.items() if value is not None}
    _log.log(level, message, extra={"service_fields": {"event": event, **extra}})


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    found = getattr(record, "service_fields", None)
    return dict(found) if isinstance(found, dict) else {}


def _stamp(record: logging.LogRecord) -> str:
    # The moment the line was logged (the record's own timestamp), not a business time.
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``at``, ``level``, ``logger``, ``message`` and the fields."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "at": _stamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        document.update(_fields(record))
        if record.exc_info and record.exc_info[0] is not None:
            document["error"] = record.exc_info[0].__name__  # the class only: no text, no secret
        return json.dumps(document, default=str, sort_keys=False)


class HumanFormatter(logging.Formatter):
    """``2026-12-04T08:00:00+00:00 INFO rotated: flux-git rotated (op 1a2b…)``."""

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        event = fields.pop("event", None)
        head = f"{_stamp(record)} {record.levelname:<7} "
        head += f"{event}: " if event else f"{record.name}: "
        tail = " ".join(f"{key}={fields[key]}" for key in FIELDS if key in fields)
        return head + record.getMessage() + (f"  [{tail}]" if tail else "")


def configure(log_format: str, *, debug: bool = False, stream: TextIO | None = None) -> None:
    """Send patwarden's logs to *stream* (stderr) as human or JSON lines, replacing handlers."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else HumanFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("patwarden").setLevel(logging.DEBUG if debug else logging.INFO)
    for noisy in ("azure", "msal", "httpx", "httpcore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
