"""Notification conditions and their de-duplication: one message when a condition starts, a
reminder every ``reminder_interval`` while it lasts, one when it resolves.

:func:`conditions` says, from a :class:`~patwarden.service.snapshot.Snapshot`, which conditions
hold now (pure). :class:`AlertBook` remembers the open ones in ``state_dir/serve-alerts.json``
(0600), so a restarted service — even after SIGKILL — neither repeats nor forgets a message.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from patwarden.domain.durations import format_duration
from patwarden.service.snapshot import IdentityView, Snapshot, TokenView

__all__ = ["AlertBook", "Condition", "Notice", "conditions"]

ALERTS_FILE = "serve-alerts.json"


@dataclass(frozen=True, kw_only=True)
class Condition:
    """Something that needs a person, on one token or identity."""

    kind: str  # rotation_failed | rotation_rolled_back | stranded | drift | expiring
    #            | relogin_due | relogin_now | test
    subject: str  # the token or identity
    title: str
    detail: str
    fix: str | None = None
    severity: str = "warning"  # warning | critical
    level: str | None = None  # relogin_due: the warning threshold crossed (a lower one re-alerts)

    @property
    def key(self) -> str:
        """What identifies the condition across passes and restarts."""
        return f"{self.kind}:{self.subject}"


@dataclass(frozen=True, kw_only=True)
class Notice:
    """One message to send: a condition and whether it started, lasts, or resolved."""

    condition: Condition
    phase: str  # started | reminder | resolved | test
    at: datetime
    started_at: datetime


def conditions(
    snapshot: Snapshot, *, now: datetime, relogin_warnings: Sequence[timedelta]
) -> list[Condition]:
    """Every condition that holds in *snapshot* (pure)."""
    found: list[Condition] = []
    for token in snapshot.tokens:
        subject = token.name
        if token.last_outcome in ("failed", "rolled_back") or token.status == "failed":
            kind = (
                "rotation_rolled_back" if token.last_outcome == "rolled_back" else "rotation_failed"
            )
            what = "rolled back" if kind == "rotation_rolled_back" else "failed"
            found.append(
                Condition(
                    kind=kind,
                    subject=subject,
                    title=f"Rotation of {subject} {what}",
                    detail=token.problem or token.last_reason or what,
                    fix=token.fix,
                    severity="critical",
                )
            )
        if token.status == "stranded":
            found.append(_token_condition("stranded", token.name, "PAT stranded", token))
        if token.drift:
            found.append(_token_condition("drift", token.name, "sink drift not repaired", token))
        if token.valid_to is not None:
            left = token.valid_to - now
            if token.expiring or left <= timedelta(0):
                found.append(
                    Condition(
                        kind="expiring",
                        subject=subject,
                        title=f"PAT of {subject} expires {token.valid_to.isoformat()} unrotated",
                        detail=f"the current PAT ({token.current_authorization_id}) expires in "
                        f"{_left(left)} and no rotation has replaced it",
                        fix=token.fix
                        or "run `patwarden rotate --token NAME` and check why it failed",
                        severity="critical",
                    )
                )
    for identity in snapshot.identities:
        found += _identity_conditions(identity, now=now, warnings=relogin_warnings)
    return found


def _token_condition(kind: str, name: str, what: str, token: TokenView) -> Condition:
    return Condition(
        kind=kind,
        subject=name,
        title=f"{name}: {what}",
        detail=token.problem or "; ".join(token.drift) or what,
        fix=token.fix,
        severity="critical" if kind == "stranded" else "warning",
    )


def _identity_conditions(
    identity: IdentityView, *, now: datetime, warnings: Sequence[timedelta]
) -> list[Condition]:
    name = identity.name
    if identity.relogin_now:
        return [
            Condition(
                kind="relogin_now",
                subject=name,
                title=f"Re-login needed now: identity {name}",
                detail=identity.detail,
                fix=identity.fix or f"run `patwarden login --identity {name}`",
                severity="critical",
            )
        ]
    deadline = identity.relogin_deadline
    if deadline is None:
        return []
    left = deadline - now
    crossed = [w for w in warnings if left <= w]
    if not crossed:
        return []
    level = format_duration(min(crossed))
    return [
        Condition(
            kind="relogin_due",
            subject=name,
            title=f"Re-login of identity {name} needed within {level}",
            detail=f"its sign-in runs out {deadline.isoformat()} (in {_left(left)}, "
            f"{identity.relogin_cause or 'inactivity'})",
            fix=f"run `patwarden login --identity {name}` before {deadline.date().isoformat()}",
            level=level,
        )
    ]


def _left(left: timedelta) -> str:
    if left <= timedelta(0):
        return "no time (already passed)"
    return format_duration(timedelta(seconds=int(left.total_seconds()))) or "under a second"


class AlertBook:
    """The open conditions, persisted, and what to send when they change."""

    def __init__(self, path: Path, *, reminder_interval: timedelta) -> None:
        self.path = path
        self.reminder_interval = reminder_interval
        self._open: dict[str, dict[str, str | None]] = self._load()

    @classmethod
    def in_state_dir(cls, state_dir: Path, *, reminder_interval: timedelta) -> AlertBook:
        return cls(state_dir / ALERTS_FILE, reminder_interval=reminder_interval)

    def open_keys(self) -> list[str]:
        """The conditions currently open, by key."""
        return sorted(self._open)

    def update(self, current: Iterable[Condition], *, now: datetime) -> list[Notice]:
        """Record which conditions hold now; return the notices to send (and persist)."""
        notices: list[Notice] = []
        seen: set[str] = set()
        for condition in current:
            if condition.key in seen:
                continue
            seen.add(condition.key)
            entry = self._open.get(condition.key)
            if entry is None or entry.get("level") != condition.level:
                started = now if entry is None else _parse(entry.get("started_at"), now)
                notices.append(
                    Notice(condition=condition, phase="started", at=now, started_at=started)
                )
                self._open[condition.key] = _entry(condition, started=started, sent=now)
                continue
            started = _parse(entry.get("started_at"), now)
            if now - _parse(entry.get("last_sent_at"), now) >= self.reminder_interval:
                notices.append(
                    Notice(condition=condition, phase="reminder", at=now, started_at=started)
                )
                entry["last_sent_at"] = now.isoformat()
        for key in sorted(set(self._open) - seen):
            entry = self._open.pop(key)
            resolved = Condition(
                kind=str(entry.get("kind")),
                subject=str(entry.get("subject")),
                title=f"Resolved: {entry.get('title')}",
                detail="the condition no longer holds",
                severity="ok",
                level=entry.get("level"),
            )
            notices.append(
                Notice(
                    condition=resolved,
                    phase="resolved",
                    at=now,
                    started_at=_parse(entry.get("started_at"), now),
                )
            )
        if notices:
            self._save()
        return notices

    def _load(self) -> dict[str, dict[str, str | None]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): dict(v) for k, v in data.items() if isinstance(v, dict)}

    def _save(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(self._open, handle, indent=1, sort_keys=True)
        os.replace(temp, self.path)


def _entry(condition: Condition, *, started: datetime, sent: datetime) -> dict[str, str | None]:
    return {
        "kind": condition.kind,
        "subject": condition.subject,
        "title": condition.title,
        "level": condition.level,
        "started_at": started.isoformat(),
        "last_sent_at": sent.isoformat(),
    }


def _parse(value: str | None, default: datetime) -> datetime:
    try:
        return datetime.fromisoformat(value) if value else default
    except ValueError:
        return default
