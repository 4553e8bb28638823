"""Cross-checks of the ``service:`` section the schema cannot express, with key paths and fixes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from patwarden.config.problems import Problem
from patwarden.config.service import DEFAULT_LISTEN, is_loopback
from patwarden.domain.durations import DurationError, parse_duration

__all__ = ["service_problems"]


def service_problems(raw: Mapping[str, Any]) -> list[Problem]:
    """What the schema cannot say about ``service:`` (robust to schema errors elsewhere)."""
    service = raw.get("service")
    if not isinstance(service, dict):
        return []
    problems: list[Problem] = []
    listen = service.get("listen", DEFAULT_LISTEN)
    if isinstance(listen, str) and ":" in listen:
        host, _, port = listen.rpartition(":")
        protected = service.get("bearer_token") is not None or (
            isinstance(service.get("tls"), dict) and service["tls"].get("client_ca") is not None
        )
        if not is_loopback(host.strip("[]")) and not protected:
            problems.append(
                Problem(
                    path="service.listen",
                    message=f"{listen} accepts connections from other machines, but nothing "
                    "authenticates them",
                    fix="set service.bearer_token: {env: NAME} or service.tls with client_ca "
                    "(mTLS), or listen on 127.0.0.1",
                )
            )
        if port.isdigit() and not 0 < int(port) < 65536:
            problems.append(
                Problem(
                    path="service.listen",
                    message=f"port {port} is out of range",
                    fix="use a port between 1 and 65535, e.g. 127.0.0.1:9464",
                )
            )
    low, high = service.get("backoff_min"), service.get("backoff_max")
    if isinstance(low, str) and isinstance(high, str):
        problems += _backoff_problems(low, high)
    return problems


def _backoff_problems(low: str, high: str) -> list[Problem]:
    try:
        if parse_duration(low) > parse_duration(high):
            return [
                Problem(
                    path="service.backoff_max",
                    message=f"is shorter than service.backoff_min ({low})",
                    fix="make backoff_max at least backoff_min, e.g. backoff_min: 1m, "
                    "backoff_max: 1h",
                )
            ]
    except DurationError:
        pass  # the schema reports it
    return []
