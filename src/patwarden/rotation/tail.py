"""The rotation's tail, done by the engine under the token's lock: promotion and its hooks, the
audit of reconcile findings, and the bookkeeping of revocations (audit record, sink tags).

The grace-period revocation of a rotation's previous PAT is journaled by the state machine
(``revoke_pending`` → ``revoked`` → one :class:`~patwarden.domain.messages.TagRevoked` per sink
that can tag → ``done``); this module supplies the pieces the engine needs around it: the
``hook_failed`` audit and hook notes, the audit of reconcile findings, the tags of PATs revoked
outside a rotation (orphans, ``patwarden revoke``), and the notes hooks return. Sinks tag through
the optional :class:`~patwarden.rotation.ports.RevocationTagging` ability, never by probing for
a method.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from patwarden.domain.models import AuditRecord, IssuedPat, ManagedTokenState, TokenSpec
from patwarden.domain.operation import Operation, Step
from patwarden.errors import ConfigError, PatwardenError, describe_error
from patwarden.rotation.outcomes import Finding, FindingKind, Promotion
from patwarden.rotation.ports import HookFailed, PatIssuer, RevocationTagging, Sink, StateStore
from patwarden.rotation.records import pat_id, promoted_state, state_audit
from patwarden.secret import Secret

__all__ = [
    "PromotionHook",
    "finding_audit",
    "promote",
    "record_findings",
    "resumed_finding",
    "revoke_now",
    "revoked_ids",
    "tag_revoked",
    "taggable",
]

PromotionHook = Callable[[TokenSpec, Promotion], Sequence[str]]
"""Runs a token's hooks after promotion; returns secret-free notes for the outcome.

It raises :class:`~patwarden.rotation.ports.HookFailed` (with the notes) when a hook failed."""

# Findings worth a line in the audit log; drift is reported by every run instead, and the
# revocation of a previous PAT is audited with its journaled step (``records.operation_audit``).
_AUDITED = {
    FindingKind.RESUMED,
    FindingKind.REVOKE_DEFERRED,
    FindingKind.ORPHAN_REVOKED,
    FindingKind.STATE_MISSING,
    FindingKind.STRANDED_REVOKED,
    FindingKind.CURRENT_LOST,
    FindingKind.PREFLIGHT_FAILED,
}
_TAGGED = {FindingKind.ORPHAN_REVOKED, FindingKind.STRANDED_REVOKED}


def taggable(sinks: Mapping[str, Sink]) -> tuple[str, ...]:
    """Return the keys of the sinks that can tag a revoked PAT's versions."""
    return tuple(key for key, sink in sinks.items() if isinstance(sink, RevocationTagging))


def tag_revoked(sinks: Mapping[str, Sink], authorization_id: str, at: datetime) -> list[str]:
    """Tag the versions holding the revoked ``authorization_id`` in every sink that can.

    Returns a note per sink that failed: a tag is bookkeeping, it never fails a run.
    """
    notes = []
    for key in taggable(sinks):
        note = tag_one(sinks[key], authorization_id, at)
        if note is not None:
            notes.append(note)
    return notes


def tag_one(sink: Sink, authorization_id: str, at: datetime) -> str | None:
    """Tag ``authorization_id``'s versions in ``sink``; return a note if that failed."""
    if not isinstance(sink, RevocationTagging):
        return None
    try:
        sink.mark_revoked(authorization_id, at=at)
    except Exception as exc:  # a tag is bookkeeping: report it, never fail the run
        return (
            f"{sink.describe()}: could not tag PAT {authorization_id} as revoked "
            f"({describe_error(exc)})"
        )
    return None


def revoked_ids(op: Operation) -> set[str]:
    """Return the PATs ``op`` has revoked (its previous one, or its new one on a rollback)."""
    ids = set()
    if op.step in (Step.REVOKED, Step.DONE) and op.previous is not None:
        ids.add(op.previous.authorization_id)
    if op.new_revoked and op.new is not None:
        ids.add(op.new.authorization_id)
    return ids


def resumed_finding(before: Step, op: Operation, now: datetime) -> Finding | None:
    """What reconcile reports about ``op`` after driving it on from step ``before``."""
    if before is not Step.REVOKE_PENDING:
        detail = f"operation {op.operation_id} resumed from {before.value}: {op.step.value}"
        if op.reason:
            detail += f" ({op.reason})"
        return Finding(kind=FindingKind.RESUMED, token_name=op.token_name, detail=detail)
    if op.step in (Step.REVOKED, Step.DONE) and op.previous is not None:
        pat = op.previous.authorization_id
        return Finding(
            kind=FindingKind.REVOKED_PREVIOUS,
            token_name=op.token_name,
            detail=f"revoked previous PAT {pat}",
            authorization_id=pat,
        )
    if op.note and op.revoke_at is not None and op.revoke_at <= now:
        return Finding(kind=FindingKind.REVOKE_DEFERRED, token_name=op.token_name, detail=op.note)
    return None


def record_findings(
    *, store: StateStore, sinks: Mapping[str, Sink], findings: Sequence[Finding], now: datetime
) -> list[str]:
    """Audit the findings that belong in the audit log and tag the orphans just revoked.

    Returns a note per failed tag.
    """
    notes = []
    for finding in findings:
        if finding.kind in _AUDITED:
            store.append_audit(finding_audit(finding, now))
        if finding.kind in _TAGGED and finding.authorization_id:
            notes += tag_revoked(sinks, finding.authorization_id, now)
    return notes


def finding_audit(finding: Finding, now: datetime) -> AuditRecord:
    """Return the audit record of a reconcile finding."""
    detail: list[tuple[str, str | int | bool | None]] = [("detail", finding.detail)]
    if finding.sink:
        detail.append(("sink", finding.sink))
    return AuditRecord(
        at=now,
        kind=finding.kind.value,
        token_name=finding.token_name,
        authorization_id=finding.authorization_id,
        detail=tuple(detail),
    )


def promote(
    *,
    store: StateStore,
    spec: TokenSpec,
    op: Operation,
    now: Callable[[], datetime],
    hook: PromotionHook | None,
    secret: Secret | None = None,
) -> list[str]:
    """Make ``op``'s new PAT current (idempotent), then run the hooks; return their notes.

    ``secret`` (the new PAT, when in memory) travels on the promotion only for redaction.

    A failing hook never undoes the rotation: it is audited as ``hook_failed``.
    """
    at = now()
    state = store.load_token(spec.name) or ManagedTokenState(
        token_name=spec.name, organization=spec.organization
    )
    promoted = promoted_state(state=state, op=op, revoke_after=spec.revoke_after, now=at)
    if promoted is None or promoted.current is None:
        return []
    detail = f"operation {op.operation_id}"
    store.save_token(promoted, audit=[state_audit("promoted", promoted, detail, at)])
    if hook is None:
        return []
    promotion = Promotion(
        token_name=spec.name,
        organization=spec.organization,
        operation_id=op.operation_id,
        authorization_id=promoted.current.authorization_id,
        valid_to=promoted.current.valid_to,
        previous_authorization_id=pat_id(promoted.previous),
        revoke_at=promoted.revoke_at,
        sinks=tuple(p.sink for p in op.sinks),
        secrets=(secret,) if secret is not None else (),
    )
    try:
        return list(hook(spec, promotion))
    except Exception as exc:  # a hook must never undo a finished rotation
        store.append_audit(state_audit("hook_failed", promoted, describe_error(exc), now()))
        return list(exc.notes) if isinstance(exc, HookFailed) else []


def revoke_now(
    *,
    store: StateStore,
    issuer: PatIssuer,
    spec: TokenSpec,
    sinks: Callable[[], Mapping[str, Sink]],
    previous: bool,
    now: Callable[[], datetime],
    where: str,
) -> tuple[IssuedPat, list[str]]:
    """Revoke the token's current (or previous) PAT now, record it, tag its versions.

    Call it under the token's lock. Returns the revoked PAT and a note per failed tag.

    Raises:
        ConfigError: the token has no such PAT in the state store (``where`` names the store).
        AzureDevOpsError: the revoke failed (nothing was recorded).
    """
    which = "previous" if previous else "current"
    state = store.load_token(spec.name)
    target = None if state is None else (state.previous if previous else state.current)
    if state is None or target is None:
        raise ConfigError(
            f"token {spec.name!r} has no {which} PAT in the state store {where}; "
            "nothing was revoked",
            hint="see `patwarden status`; run `patwarden adopt` if the state was lost",
        )
    issuer.revoke(organization=spec.organization, authorization_id=target.authorization_id)
    at = now()
    if previous:
        after = dataclasses.replace(state, previous=None, revoke_at=None, updated_at=at)
    else:
        after = dataclasses.replace(state, current=None, updated_at=at)
    record = AuditRecord(
        at=at,
        kind="revoked_by_user",
        token_name=spec.name,
        authorization_id=target.authorization_id,
        detail=(("which", which), ("organization", spec.organization)),
    )
    store.save_token(after, audit=[record])
    try:
        built = sinks()
    except PatwardenError as exc:  # the revocation stands; only its tags are missing
        return target, [f"could not tag revoked versions: {exc.message}"]
    return target, tag_revoked(built, target.authorization_id, at)
