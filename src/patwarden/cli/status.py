"""``patwarden status`` and ``patwarden audit``: what is managed now, and what happened to it.

Both read the state store only (``status`` also reads the rotator's account record from its token
cache, for the days until re-login); neither calls Azure DevOps nor prints a secret.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from patwarden.cli.options import app_context, config_option
from patwarden.cli.output import Column, days_left, emit, output_option, resolve_format
from patwarden.cli.rotate import now_utc, plan_row, token_option
from patwarden.domain.durations import DurationError, parse_duration
from patwarden.errors import ConfigError, PatwardenError

if TYPE_CHECKING:
    from patwarden.app.snapshot import StatusView
    from patwarden.domain.models import AuditRecord, TokenSpec
    from patwarden.domain.operation import Operation
    from patwarden.rotation.outcomes import TokenPlan

_DAY = timedelta(days=1)
# Every kind the audit log holds (docs/rotation.md#audit-events, docs/inventory.md).
AUDIT_KINDS = (
    "adopted",
    "current_lost",
    "hook_failed",
    "inventory.revoke_failed",
    "inventory.revoked",
    "operation_done",
    "operation_failed",
    "operation_revoke_pending",
    "orphan_revoked",
    "preflight_failed",
    "promoted",
    "resumed",
    "revoke_deferred",
    "revoked_by_user",
    "revoked_previous",
    "sign_in_failed",
    "sign_in_ok",
    "state_missing",
    "stranded_revoked",
)
STATUS_COLUMNS = (
    Column(key="token", header="token", no_wrap=True),
    Column(key="current_authorization_id", header="current PAT", no_wrap=True),
    Column(key="valid_to", header="expires", no_wrap=True),
    Column(key="next_rotation", header="next rotation", no_wrap=True),
    Column(key="sinks_text", header="sinks (PAT they hold)"),
    Column(key="last_run", header="last run"),
)
AUDIT_COLUMNS = (
    Column(key="at", header="when", no_wrap=True),
    Column(key="kind", header="event", no_wrap=True),
    Column(key="token", header="token", no_wrap=True),
    Column(key="authorization_id", header="PAT", no_wrap=True),
    Column(key="detail", header="detail"),
)


# --- status ------------------------------------------------------------------------------------


@click.command("status")
@config_option()
@token_option()
@output_option()
def status(config_path: str | None, tokens: tuple[str, ...], output: str | None) -> None:
    """Every managed token: its PAT, expiry, next rotation, sinks, last run; and re-login dates."""
    from patwarden.app.snapshot import status_view
    from patwarden.rotation.planning import last_sign_in, plan

    view = status_view(app_context(config_path))
    specs = view.specs(tokens)
    now = now_utc()
    with view.open_store() as store:
        plans = plan(store, specs, now=now)
        rows = [
            status_row(
                item,
                organization=spec.organization,
                last=_last(store.operations(spec.name)),
                view=view,
            )
            for item, spec in zip(plans, specs, strict=True)
        ]
        rotators = [rotator_row(view, name) for name in _rotators(view, specs)]
        for row in rotators:
            _add_sign_in_failure(row, last_sign_in(store, row["identity"], now))
    emit(
        rows,
        columns=STATUS_COLUMNS,
        output=output,
        document={"tokens": rows, "rotators": rotators},
        empty="No tokens are configured (add them under tokens: in the config).",
    )
    if resolve_format(output) != "json":
        for rotator in rotators:
            click.echo(rotator["summary"])


def _rotators(view: StatusView, specs: list[TokenSpec]) -> list[str]:
    names = [view.rotator_for(spec.name) for spec in specs] or [view.default_rotator]
    return list(dict.fromkeys(names))


def _last(operations: Any) -> Operation | None:
    return operations[-1] if operations else None


def status_row(
    item: TokenPlan, *, organization: str, last: Operation | None, view: StatusView
) -> dict[str, Any]:
    """What ``status`` says about one token (JSON keys; the table shows a few of them)."""
    now = now_utc()
    row = plan_row(item, organization=organization)
    state = item.state
    current = state.current if state else None
    sinks = [
        {"sink": r.sink, "authorization_id": r.authorization_id, "ref": r.ref}
        for r in (state.sinks if state else ())
    ]
    due = item.decision
    next_rotation = "now" if due.is_due else due.due_at
    if item.problem:
        next_rotation = "refused (see plan)"
    row.update(
        rotator=view.rotator_for(item.token_name),
        days_left=days_left(current.valid_to, now=now) if current else None,
        next_rotation=next_rotation,
        previous_authorization_id=state.previous.authorization_id
        if state and state.previous
        else None,
        revoke_previous_at=state.revoke_at if state else None,
        previous_until=list(item.previous_until),
        sinks=sinks,
        last_outcome=_operation_json(last),
    )
    row["sinks_text"] = "\n".join(
        f"{s['sink']}: {s['authorization_id'] or 'unknown'}"
        + (f" (version {str(s['ref'])[:12]})" if s["ref"] else "")
        for s in sinks
    ) or ("-" if current is None else "no sinks")
    row["last_run"] = _last_run_text(last, row)
    return row


def _operation_json(op: Operation | None) -> dict[str, Any] | None:
    if op is None:
        return None
    return {
        "operation_id": op.operation_id,
        "step": op.step.value,
        "outcome": op.outcome.value if op.outcome else None,
        "reason": op.reason,
        "started_at": op.started_at,
        "new_authorization_id": op.new.authorization_id if op.new else None,
    }


def _last_run_text(op: Operation | None, row: dict[str, Any]) -> str:
    if op is None:
        return "never rotated"
    when = op.started_at.strftime("%Y-%m-%d %H:%M UTC")
    what = op.outcome.value if op.outcome else op.step.value
    text = f"{what} at {when}"
    if op.reason and what != "rotated":
        text += f": {op.reason}"
    for pat, until in zip(row["previous_authorization_ids"], row["previous_until"], strict=True):
        after = f" revoked after {until:%Y-%m-%d %H:%M} UTC" if until else " awaiting revocation"
        text += f"\nprevious PAT {pat}{after}"
    for pat in row["stranded_authorization_ids"]:
        text += f"\nstranded PAT {pat} (still valid): the next `patwarden rotate` revokes it"
    return text


def _add_sign_in_failure(row: dict[str, Any], failed: AuditRecord | None) -> None:
    """A rotator whose last sign-in failed (recorded by `rotate`) is not green, whatever its
    cached account says: show the failure and the fix."""
    row["last_sign_in_failure"] = None
    if failed is None:
        return
    reason = str(dict(failed.detail).get("reason") or "unknown")
    row["last_sign_in_failure"] = {"at": failed.at, "reason": reason}
    row["summary"] = (
        f"Rotator {row['identity']!r}: sign-in FAILED at "
        f"{failed.at:%Y-%m-%d %H:%M} UTC ({reason}); run "
        f"`patwarden login --identity {row['identity']}`."
    )


def rotator_row(view: StatusView, name: str) -> dict[str, Any]:
    """Who the rotator is signed in as and how many days until `patwarden login` is due."""
    row: dict[str, Any] = {"identity": name, "username": None, "relogin_at": None}
    row.update(days_until_relogin=None, cause=None)
    try:
        user = view.user(name)
        account = user.account()
        deadline = user.relogin_deadline()
    except PatwardenError as err:
        row["summary"] = f"Rotator {name!r}: sign-in unknown ({err.message})."
        return row
    if account is None or deadline is None:
        row["summary"] = (
            f"Rotator {name!r}: not logged in; run `patwarden login --identity {name}`."
        )
        return row
    days = deadline.days_left(now_utc())
    row.update(
        username=account.username,
        relogin_at=deadline.at,
        days_until_relogin=round(days, 1),
        cause=deadline.cause.value,
    )
    when = deadline.at.strftime("%Y-%m-%d")
    row["summary"] = (
        f"Rotator {name!r} ({account.username}): re-login needed in {days:.0f} days "
        f"(by {when}, {deadline.cause.value})."
    )
    return row


# --- audit -------------------------------------------------------------------------------------


class Since(click.ParamType[datetime, "str | datetime"]):
    """A duration back from now (``7d``) or an ISO 8601 moment (``2026-11-01T00:00:00Z``)."""

    name = "since"

    def convert(
        self, value: str | datetime, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return now_utc() - parse_duration(value)
        except DurationError:
            pass
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{value!r} is neither a duration (7d, 12h) nor an ISO date", param, ctx)
        return moment if moment.tzinfo else moment.replace(tzinfo=now_utc().tzinfo)


@click.command("audit")
@config_option()
@token_option()
@click.option("--since", type=Since(), help="Only events since then: 7d, 12h or an ISO date.")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(AUDIT_KINDS),
    metavar="KIND",
    help="Only this event kind (repeat for several): " + ", ".join(AUDIT_KINDS) + ".",
)
@output_option()
def audit(
    config_path: str | None,
    tokens: tuple[str, ...],
    since: datetime | None,
    kinds: tuple[str, ...],
    output: str | None,
) -> None:
    """The append-only audit log: rotations, revocations, adoptions, hooks that failed."""
    app = app_context(config_path)
    config = app.config
    unknown = sorted(set(tokens) - set(config.tokens))
    if unknown:
        raise ConfigError(
            f"no token named {', '.join(map(repr, unknown))} in {config.source}",
            hint="configured tokens: " + (", ".join(config.tokens) or "none"),
        )
    records: list[AuditRecord] = []
    if app.state_backend().exists():
        with app.state_store() as store:
            records = list(store.audit(since, kinds=kinds, tokens=tokens))
    rows = [_audit_row(r) for r in records]
    emit(
        rows,
        columns=AUDIT_COLUMNS,
        output=output,
        document=[r.to_json() for r in records],
        empty="No audit records" + (" match." if tokens or kinds or since else " yet."),
    )


def _audit_row(record: AuditRecord) -> dict[str, Any]:
    parts = [f"operation {record.operation_id}"] if record.operation_id else []
    for key, value in record.detail:
        text = str(value)
        if value is None or text in parts:
            continue
        parts.append(text if key == "detail" else f"{key}={text}")
    detail = "; ".join(parts)
    return {
        "at": record.at,
        "kind": record.kind,
        "token": record.token_name,
        "authorization_id": record.authorization_id,
        "detail": detail,
    }
