"""Reconcile and adopt: keep Azure DevOps, the sinks and the state store telling one story.

Reconcile runs at the start of every run, per token, under the token's lock: it finds marked PATs
nothing refers to any more (orphans) and revokes them after a safety margin, and reports drift (a
sink no longer serving what patwarden wrote). ``adopt`` rebuilds a lost state from display-name
markers and sink metadata. Only tokens in the current configuration are touched: a marked PAT of
an unknown token may belong to another installation sharing the service account.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from patwarden.domain.marker import parse_marker
from patwarden.domain.models import IssuedPat, ManagedTokenState, SinkRecord, TokenSpec
from patwarden.domain.operation import Operation
from patwarden.domain.schedule import decide
from patwarden.errors import describe_error
from patwarden.rotation.converge import (
    TokenRun,
    active_ids,
    drift_reasons,
    journal_known,
    lost_current,
)
from patwarden.rotation.listing import marked_for
from patwarden.rotation.outcomes import AdoptResult, Finding, FindingKind, OutcomeKind, TokenOutcome
from patwarden.rotation.ports import PatIssuer, Sink, SinkVersion, StateStore
from patwarden.rotation.records import state_audit, stranded_reason

__all__ = [
    "adopt_into",
    "adopt_token",
    "find_drift",
    "marked_for",
    "not_adopted",
    "preview_token",
    "revoke_orphans",
    "sweep",
]


def _live_ids(sinks: Mapping[str, Sink]) -> tuple[set[str], list[str]]:
    """Return the authorization ids the sinks say they serve, and the sinks that cannot tell."""
    ids: set[str] = set()
    unknown: list[str] = []
    for key, sink in sinks.items():
        try:
            version = sink.current_version()
        except Exception:
            unknown.append(key)
            continue
        if version is None:
            continue
        if version.authorization_id is None:
            unknown.append(key)
        else:
            ids.add(version.authorization_id)
    return ids, unknown


def revoke_orphans(
    *,
    spec: TokenSpec,
    state: ManagedTokenState,
    operations: Sequence[Operation],
    marked: Sequence[IssuedPat],
    sinks: Mapping[str, Sink],
    issuer: PatIssuer,
    now: datetime,
    margin: timedelta,
    dry_run: bool,
    known: frozenset[str] = frozenset(),
) -> list[Finding]:
    """Revoke this token's marked PATs that nothing refers to.

    Referred to: the state's current/previous PATs and sink records, every PAT of an unfinished
    operation, and whatever a sink says it serves now. A sink that cannot say which PAT it serves
    keeps the state's record of it authoritative. A PAT the journal ``known`` (a failed
    rollback's, a stranded one's) is revoked at once; ``margin`` only protects PATs the journal
    does not know (another run may be creating them).
    """
    referenced = set(state.referenced_ids())
    active_ops = set()
    for op in operations:
        if not op.step.is_terminal:
            active_ops.add(op.operation_id)
            referenced.update(p.authorization_id for p in (op.new, op.previous) if p is not None)
    candidates = [
        pat
        for pat in marked_for(spec.name, marked)
        if pat.authorization_id not in referenced
        and (m := parse_marker(pat.display_name)) is not None
        and m.operation_id not in active_ops
        and (pat.authorization_id in known or now - pat.valid_from >= margin)
    ]
    if not candidates:
        return []
    live, _ = _live_ids(sinks)
    findings = []
    for pat in candidates:
        pat_id = pat.authorization_id
        if pat_id in live:
            continue
        stranded = pat_id in known
        if dry_run:
            what = "stranded PAT the journal knows" if stranded else "orphaned marked PAT"
            findings.append(_orphan(spec.name, pat_id, f"would revoke this {what}"))
            continue
        try:
            issuer.revoke(organization=spec.organization, authorization_id=pat_id)
        except Exception as exc:
            findings.append(_orphan(spec.name, pat_id, f"revoke failed: {describe_error(exc)}"))
            continue
        if stranded:
            kind = FindingKind.STRANDED_REVOKED
            detail = (
                f"revoked stranded PAT {pat.display_name} (the journal knows it; no sink serves it)"
            )
        else:
            kind = FindingKind.ORPHAN_REVOKED
            detail = f"revoked orphaned PAT {pat.display_name} (no sink or state referred to it)"
        findings.append(
            Finding(kind=kind, token_name=spec.name, authorization_id=pat_id, detail=detail)
        )
    return findings


def sweep(
    run: TokenRun, store: StateStore, issuer: PatIssuer, now: datetime, margin: timedelta
) -> None:
    """Revoke the token's orphans and the stranded PATs the journal knows (audited, tagged)."""
    spec, listing = run.spec, run.listing
    state = store.load_token(spec.name)
    if state is None:
        return
    if not isinstance(listing, list):
        if listing is not None:
            run.notes.append(f"orphan check skipped: {listing}")
        return
    mine = marked_for(spec.name, listing)  # by the listing's index: O(this token's PATs)
    referenced = state.referenced_ids()
    if all(p.authorization_id in referenced or p.authorization_id in run.revoked for p in mine):
        return  # no candidate: the token's history (every operation) need not be read
    journaled = store.operations(spec.name)
    found = revoke_orphans(
        spec=spec,
        state=state,
        operations=store.operations(spec.name, unfinished=True),
        marked=[pat for pat in mine if pat.authorization_id not in run.revoked],
        sinks=run.sinks,
        issuer=issuer,
        now=now,
        margin=margin,
        dry_run=False,
        known=journal_known(journaled, mine),
    )
    revoked = (FindingKind.ORPHAN_REVOKED, FindingKind.STRANDED_REVOKED)
    run.revoked |= {f.authorization_id for f in found if f.authorization_id and f.kind in revoked}
    stranded = {f.authorization_id for f in found if f.kind is FindingKind.STRANDED_REVOKED}
    for op in journaled:  # the operation that left it learns it is revoked: plan stops listing it
        if op.new is not None and op.new.authorization_id in stranded and not op.new_revoked:
            store.record(replace(op, new_revoked=True))
    run.record(store, now, found)


def _orphan(token: str, pat_id: str, detail: str) -> Finding:
    return Finding(
        kind=FindingKind.ORPHAN_FOUND, token_name=token, authorization_id=pat_id, detail=detail
    )


def find_drift(
    *,
    state: ManagedTokenState,
    sinks: Mapping[str, Sink],
    seen: dict[str, SinkVersion | None] | None = None,
) -> list[Finding]:
    """Report sinks that no longer serve the version patwarden recorded for them; put each
    version read into ``seen`` (if given)."""
    findings = []
    current = None if state.current is None else state.current.authorization_id
    for key, sink in sinks.items():
        record = state.sink(key)
        if record is None and current is None:
            continue
        try:
            version = sink.current_version()
        except Exception as exc:
            detail = f"could not read its version to check for drift: {describe_error(exc)}"
            findings.append(_drift(state.token_name, key, detail, None))
            continue
        if seen is not None:
            seen[key] = version
        if record is None:  # a sink patwarden never wrote (added to the config since)
            if version is None or version.authorization_id != current:
                detail = f"does not hold the current PAT {current} (patwarden never wrote it)"
                pat_id = None if version is None else version.authorization_id
                findings.append(_drift(state.token_name, key, detail, pat_id))
            continue
        if version is None:
            findings.append(_drift(state.token_name, key, "the sink is empty", None))
        elif version.authorization_id and version.authorization_id != record.authorization_id:
            detail = (
                f"serves PAT {version.authorization_id}, patwarden wrote {record.authorization_id}"
            )
            findings.append(_drift(state.token_name, key, detail, version.authorization_id))
        elif version.ref != record.ref:
            detail = f"its version changed from {record.ref} to {version.ref} outside patwarden"
            findings.append(_drift(state.token_name, key, detail, version.authorization_id))
    return findings


def _drift(token: str, sink: str, detail: str, pat_id: str | None) -> Finding:
    return Finding(
        kind=FindingKind.DRIFT, token_name=token, sink=sink, detail=detail, authorization_id=pat_id
    )


def not_adopted(spec: TokenSpec, detail: str) -> AdoptResult:
    """Return the result of a token ``adopt`` left alone, and why."""
    return AdoptResult(
        token_name=spec.name, adopted=False, current_authorization_id=None, detail=detail
    )


def adopt_into(
    store: StateStore,
    spec: TokenSpec,
    listing: Sequence[IssuedPat] | str | None,
    sinks: Callable[[TokenSpec], Mapping[str, Sink]],
    now: datetime,
) -> AdoptResult:
    """Rebuild ``spec``'s state from ``listing`` and its sinks and save it (audited ``adopted``).

    Call it under the token's lock.
    """
    if not isinstance(listing, Sequence) or isinstance(listing, str):
        return not_adopted(spec, f"cannot list PATs in {spec.organization}: {listing}")
    state, result = adopt_token(spec=spec, marked=listing, sinks=sinks(spec), now=now)
    store.save_token(state, audit=[state_audit("adopted", state, result.detail, now)])
    return result


def adopt_token(
    *, spec: TokenSpec, marked: Sequence[IssuedPat], sinks: Mapping[str, Sink], now: datetime
) -> tuple[ManagedTokenState, AdoptResult]:
    """Rebuild a token's state from its marked PATs and what its sinks say they serve."""
    mine = sorted(marked_for(spec.name, marked), key=lambda p: p.valid_from)
    by_id = {p.authorization_id: p for p in mine}
    records: list[SinkRecord] = []
    notes: list[str] = []
    for key, sink in sinks.items():
        try:
            version = sink.current_version()
        except Exception as exc:
            notes.append(f"{key}: could not read its version ({describe_error(exc)})")
            continue
        if version is not None:
            records.append(
                SinkRecord(sink=key, authorization_id=version.authorization_id, ref=version.ref)
            )
    served = [r.authorization_id for r in records if r.authorization_id in by_id]
    if served:
        current = max((by_id[i] for i in served if i), key=lambda p: p.valid_from)
        if len(set(served)) > 1:
            notes.append("the sinks serve different PATs; the newest is taken as current")
        how = "named by the sinks' metadata"
    elif mine:
        current = mine[-1]
        how = "the newest marked PAT (the sinks do not say which PAT they hold)"
    else:
        state = ManagedTokenState(
            token_name=spec.name,
            organization=spec.organization,
            sinks=tuple(records),
            updated_at=now,
        )
        detail = "no marked PAT found; the token is due at the next run"
        return state, AdoptResult(
            token_name=spec.name, adopted=True, current_authorization_id=None, detail=detail
        )
    marker = parse_marker(current.display_name)
    state = ManagedTokenState(
        token_name=spec.name,
        organization=spec.organization,
        current=current,
        sinks=tuple(records),
        last_operation_id=None if marker is None else marker.operation_id,
        updated_at=now,
    )
    others = len(mine) - 1
    if others:
        notes.append(f"{others} other marked PAT(s) will be revoked by reconcile as orphans")
    return state, AdoptResult(
        token_name=spec.name,
        adopted=True,
        current_authorization_id=current.authorization_id,
        detail=f"current PAT {current.authorization_id}: {how}",
        notes=tuple(notes),
    )


def preview_token(
    *,
    spec: TokenSpec,
    state: ManagedTokenState | None,
    operations: Sequence[Operation],
    listing: Sequence[IssuedPat] | None,
    sinks: Mapping[str, Sink],
    issuer: PatIssuer,
    now: datetime,
    margin: timedelta,
    history: Sequence[Operation] = (),
) -> tuple[TokenOutcome, list[Finding]]:
    """Say what a run would do for ``spec`` (dry run): findings, repairs and the plan; changes
    nothing. ``history`` is every operation of the token (the PATs the journal knows)."""
    notes = tuple(
        f"would resume operation {op.operation_id} at {op.step.value}"
        for op in operations
        if not op.step.is_terminal and not op.step.is_tail
    )
    findings: list[Finding] = []
    if state is not None:
        if listing is not None:
            listing = marked_for(spec.name, listing)  # only this token's PATs matter here
            findings.extend(
                revoke_orphans(
                    spec=spec,
                    state=state,
                    operations=operations,
                    marked=listing,
                    sinks=sinks,
                    issuer=issuer,
                    now=now,
                    margin=margin,
                    dry_run=True,
                    known=journal_known(history, listing),
                )
            )
        drift = find_drift(state=state, sinks=sinks)
        findings.extend(drift)
        active = None if listing is None else active_ids(spec.name, listing)
        gone = lost_current(state, active, now)
        current = None if state.current is None else state.current.authorization_id
        repairs = [r for r in (gone, stranded_reason(state)) if r]
        repairs += drift_reasons(drift, current)
    else:
        repairs = []
    decision = decide(spec=spec, issued=state.current if state else None, now=now)
    if repairs and not decision.is_due:
        decision = replace(decision, is_due=True, reason="would repair: " + "; ".join(repairs))
    if decision.would_loop:
        kind = OutcomeKind.FAILED
    else:
        kind = OutcomeKind.WOULD_ROTATE if decision.is_due else OutcomeKind.NOT_DUE
    current = None if state is None or state.current is None else state.current.authorization_id
    outcome = TokenOutcome(
        token_name=spec.name,
        kind=kind,
        reason=decision.reason,
        current_authorization_id=current,
        due_at=decision.due_at,
        notes=notes,
    )
    return outcome, findings
