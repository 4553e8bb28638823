"""Desired state versus observed state: what a run must repair, and whether a token converged.

The desired state of a token (docs/rotation.md#reconcile): exactly one current PAT, active and
not expired, that every sink serves; besides it at most the previous PATs still inside their
grace period; no other active PAT carrying the token's marker. Reconcile observes the world (the
marked PATs Azure DevOps lists, what each sink serves, the journal) and this module says what
differs: a current PAT that is gone means rotate now, drift means rotate (the value of the current
PAT is never stored, so a rotation is the one journaled way to put a valid PAT into every sink),
and whatever is still wrong at the end of a run is a *problem* that makes ``rotate`` exit
non-zero. Nothing here holds a secret.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from patwarden.domain.marker import parse_marker
from patwarden.domain.models import IssuedPat, ManagedTokenState, TokenSpec
from patwarden.domain.operation import Operation, Step
from patwarden.errors import describe_error
from patwarden.rotation import tail
from patwarden.rotation.listing import indexed, marked_for
from patwarden.rotation.outcomes import Finding, FindingKind
from patwarden.rotation.ports import (
    FreshListing,
    PatIssuer,
    Preflight,
    Sink,
    SinkVersion,
    StateStore,
)

__all__ = [
    "TokenRun",
    "active_ids",
    "drift_reasons",
    "end_problems",
    "forget_lost",
    "fresh_ids",
    "grace_ids",
    "journal_known",
    "left_valid",
    "list_marked",
    "lost_current",
    "preflight",
    "problems",
]


@dataclass(kw_only=True)
class TokenRun:
    """What one token's run has observed and done so far (under the token's lock)."""

    spec: TokenSpec
    sinks: Mapping[str, Sink]
    listing: list[IssuedPat] | str | None  # the run's listing of marked PATs, or why none
    findings: list[Finding]  # the run's findings (shared by every token of the run)
    notes: list[str] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)  # PATs this run revoked
    created: set[str] = field(default_factory=set)  # PATs this run created
    active: set[str] | None = None  # the token's active marked PATs when listed
    read: set[str] = field(default_factory=set)  # sinks whose version this run read fine
    # What each sink served when the drift check read it; valid until the run writes a sink.
    versions: dict[str, SinkVersion | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.listing, list):
            self.active = active_ids(self.spec.name, self.listing)

    def record(self, store: StateStore, now: datetime, found: Sequence[Finding]) -> None:
        """Audit ``found`` (and tag the PATs it revoked), and report it with the run."""
        self.notes += tail.record_findings(store=store, sinks=self.sinks, findings=found, now=now)
        self.findings.extend(found)


def list_marked(issuer: PatIssuer, orgs: Iterable[str]) -> dict[str, list[IssuedPat] | str]:
    """List the marked PATs of each organization once per run (or say why it failed)."""
    listed: dict[str, list[IssuedPat] | str] = {}
    for org in sorted(orgs):
        try:
            listed[org] = indexed(issuer.list_marked(organization=org))
        except Exception as exc:
            listed[org] = describe_error(exc)
    return listed


def active_ids(token_name: str, listing: Sequence[IssuedPat]) -> set[str]:
    """Return the authorization ids of ``token_name``'s active marked PATs in ``listing``."""
    return {pat.authorization_id for pat in marked_for(token_name, listing)}


def fresh_ids(issuer: PatIssuer, token_name: str, organization: str) -> set[str] | str:
    """List ``token_name``'s active marked PATs now (bypassing a run's shared listing).

    Returns the ids, or why they could not be listed.
    """
    try:
        if isinstance(issuer, FreshListing):
            listed = issuer.list_marked_fresh(organization=organization)
        else:
            listed = issuer.list_marked(organization=organization)
    except Exception as exc:
        return f"cannot list the marked PATs of {organization}: {describe_error(exc)}"
    return active_ids(token_name, listed)


def journal_known(
    operations: Iterable[Operation], marked: Iterable[IssuedPat] = ()
) -> frozenset[str]:
    """Return every PAT the journal knows for a token: each operation's new and previous PAT,
    and every ``marked`` PAT whose marker names a journaled operation (a create whose answer
    was lost: the journal never learnt its id, but it knows the operation)."""
    ids: set[str] = set()
    journaled = set()
    for op in operations:
        journaled.add(op.operation_id)
        ids.update(p.authorization_id for p in (op.new, op.previous) if p is not None)
    for pat in marked:
        marker = parse_marker(pat.display_name)
        if marker is not None and marker.operation_id in journaled:
            ids.add(pat.authorization_id)
    return frozenset(ids)


def grace_ids(
    state: ManagedTokenState | None, operations: Iterable[Operation], now: datetime
) -> dict[str, datetime | None]:
    """Return the previous PATs still inside their grace period, with when it ends.

    Every rotation keeps its own previous PAT until its ``revoke_at``: rotating again inside a
    grace period leaves several (``rotate --force`` says which).
    """
    found: dict[str, datetime | None] = {}
    for op in operations:
        pending = op.step is Step.REVOKE_PENDING and op.previous is not None
        if pending and op.previous and (op.revoke_at is None or op.revoke_at > now):
            found[op.previous.authorization_id] = op.revoke_at
    previous = None if state is None else state.previous
    end = None if state is None else state.revoke_at
    if previous is not None and (end is None or end > now):
        found.setdefault(previous.authorization_id, end)
    return found


def left_valid(
    state: ManagedTokenState | None, operations: Iterable[Operation], now: datetime
) -> list[str]:
    """Say which previous PATs a rotation now leaves valid until their grace periods end."""
    grace = grace_ids(state, operations, now)
    if not grace:
        return []
    listed = ", ".join(
        f"{pat} (until {end:%Y-%m-%d %H:%M}Z)" if end else pat for pat, end in grace.items()
    )
    return [
        f"rotating inside a grace period: {listed} stay(s) valid until the grace period ends, "
        "besides the PAT this rotation replaces"
    ]


def lost_current(
    state: ManagedTokenState | None, active: set[str] | None, now: datetime
) -> str | None:
    """Why the state's current PAT can no longer serve (revoked, expired, gone), else ``None``."""
    if state is None or state.current is None:
        return None
    pat = state.current
    if pat.valid_to <= now:
        return f"the current PAT {pat.authorization_id} expired at {pat.valid_to:%Y-%m-%d %H:%M}Z"
    if active is not None and pat.authorization_id not in active:
        return (
            f"the current PAT {pat.authorization_id} is no longer active in Azure DevOps "
            "(revoked outside patwarden, or deleted)"
        )
    return None


def drift_reasons(drift: Sequence[Finding], current: str | None) -> list[str]:
    """Return why drift makes the token rotate now.

    Left out: sinks that could not be read (a rotation cannot write them either; they stay a
    problem of the run), and a new version whose metadata still names the ``current`` PAT (a
    rollback restored it, or someone re-saved it): the sink serves the current PAT.
    """
    return [
        f"drift in {finding.sink}: {finding.detail}"
        for finding in drift
        if finding.kind is FindingKind.DRIFT
        and not finding.detail.startswith("could not read")
        and (current is None or finding.authorization_id != current)
    ]


def preflight(
    sinks: Mapping[str, Sink],
    *,
    read: Iterable[str] = (),
    versions: dict[str, SinkVersion | None] | None = None,
) -> list[str]:
    """Check every sink before a PAT is minted; return what failed (empty: go ahead).

    A sink with the :class:`~patwarden.rotation.ports.Preflight` ability checks itself (target
    exists, writer allowed); any other sink must at least say which version it serves, unless
    this run already ``read`` it. What those reads return goes into *versions* (the run's, so
    the rotation that follows captures it as the rollback target without reading again).
    """
    failed = []
    for key, sink in sinks.items():
        try:
            if isinstance(sink, Preflight):
                sink.preflight()
            elif key not in read:
                version = sink.current_version()
                if versions is not None:
                    versions[key] = version
        except Exception as exc:
            failed.append(f"{key}: {describe_error(exc)}")
    return failed


def problems(
    *,
    state: ManagedTokenState | None,
    sinks: Mapping[str, Sink],
    active: set[str] | str | None,
    grace: Mapping[str, datetime | None],
    now: datetime,
    read: Mapping[str, SinkVersion | None] | None = None,
) -> list[str]:
    """Return how the token differs from its desired state (empty: converged).

    ``active`` is the set of the token's active marked PATs (or why it is unknown; ``None``
    skips the check). Reads every sink's version, except those in ``read`` (what this run read
    since it last wrote a sink).
    """
    found: list[str] = []
    current = None if state is None or state.current is None else state.current
    if current is None:
        found.append("the token has no current PAT")
    else:
        lost = lost_current(state, active if isinstance(active, set) else None, now)
        if lost:
            found.append(lost)
    if isinstance(active, str):
        found.append(active)
    elif active is not None and current is not None:
        extra = sorted(active - {current.authorization_id} - set(grace))
        if extra:
            found.append(
                f"besides the current PAT, {', '.join(extra)} still active (not a previous PAT "
                "inside its grace period)"
            )
    if current is not None and state is not None:
        found += _sink_problems(state, sinks, current.authorization_id, read or {})
    return found


def _sink_problems(
    state: ManagedTokenState,
    sinks: Mapping[str, Sink],
    current: str,
    read: Mapping[str, SinkVersion | None],
) -> list[str]:
    found = []
    for key, sink in sinks.items():
        try:
            version = read[key] if key in read else sink.current_version()
        except Exception as exc:
            found.append(f"{key}: could not be read ({describe_error(exc)})")
            continue
        record = state.sink(key)
        if version is None:
            found.append(f"{key} is empty")
        elif version.authorization_id is not None:
            if version.authorization_id != current:
                found.append(f"{key} serves PAT {version.authorization_id}, not {current}")
        elif record is None or record.authorization_id != current or record.ref != version.ref:
            found.append(f"{key} holds a value patwarden did not write for {current}")
    return found


def forget_lost(run: TokenRun, store: StateStore, issuer: PatIssuer, now: datetime) -> str | None:
    """If the current PAT was revoked, expired or is gone: forget it (audited ``current_lost``)
    so the token rotates now with no previous PAT to keep; return why, else ``None``."""
    spec = run.spec
    state = store.load_token(spec.name)
    if state is None or state.current is None:
        return None
    current = state.current.authorization_id
    if run.active is not None and current not in run.active:
        fresh = fresh_ids(issuer, spec.name, spec.organization)
        if isinstance(fresh, str):
            run.notes.append(fresh)
            return None
        run.active = fresh  # the run's shared listing may predate another run's rotation
    gone = lost_current(state, run.active, now)
    if gone is None:
        return None
    found = Finding(
        kind=FindingKind.CURRENT_LOST, token_name=spec.name, detail=gone, authorization_id=current
    )
    run.findings.append(found)
    forgotten = replace(state, current=None, updated_at=now)
    store.save_token(forgotten, audit=[tail.finding_audit(found, now)])
    return gone + ": rotating now"


def end_problems(
    run: TokenRun, store: StateStore, issuer: PatIssuer, now: datetime, *, reuse: bool
) -> list[str]:
    """Compare the token's state at the end of its run with the desired state (see
    :func:`problems`). The active PATs are the run's listing, plus what it created, minus what
    it revoked; Azure DevOps is asked again only when that shows a PAT too many or too few.
    With ``reuse`` (the run wrote no sink since its drift check) the sinks' versions that
    check read are the end state; otherwise every sink is read again."""
    spec = run.spec
    state = store.load_token(spec.name)
    grace = grace_ids(state, store.operations(spec.name, unfinished=True), now)
    active: set[str] | str | None = None
    if run.active is not None:
        active = (run.active | run.created) - run.revoked
        current = None if state is None or state.current is None else state.current
        expected = {current.authorization_id} if current else set()
        if active - expected - set(grace) or not expected <= active:
            active = fresh_ids(issuer, spec.name, spec.organization)
    elif isinstance(run.listing, str):
        active = run.listing
    read = run.versions if reuse else None
    return problems(state=state, sinks=run.sinks, active=active, grace=grace, now=now, read=read)
