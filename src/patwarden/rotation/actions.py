"""Performs the rotation state machine's actions through the ports, turning results into events.

One :class:`ActionRunner` serves one operation of one token. It is the only place that holds the
new PAT's value (in memory, as a :class:`~patwarden.secret.Secret`); it never reaches the journal.
Expected failures (our own errors, and anything a port raises) become events; a
``BaseException`` that is not an ``Exception`` (a crash, ``KeyboardInterrupt``) propagates and
leaves the journal at the last persisted step, from which the next run resumes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from patwarden.domain.marker import parse_marker
from patwarden.domain.messages import (
    Action,
    CapturePrevious,
    CreateFailed,
    CreatePat,
    CreateUnknown,
    Event,
    FindMarked,
    MarkedFound,
    MarkedMissing,
    PatCreated,
    PatRevoked,
    PatVerified,
    PreviousCaptured,
    Proceed,
    PromoteToken,
    ReadBack,
    ReadBackDone,
    RecoverSecret,
    RestoreFailed,
    RestoreSink,
    Resume,
    RevocationTagged,
    RevokeFailed,
    RevokePat,
    SecretLost,
    SecretRecovered,
    SinkFailed,
    SinkRestored,
    SinkWritten,
    TagFailed,
    TagRevoked,
    TokenPromoted,
    VerifyFailed,
    VerifyPat,
    Wait,
    WriteSink,
)
from patwarden.domain.models import IssuedPat, SinkRecord
from patwarden.domain.operation import Operation, SinkStatus, Step
from patwarden.errors import describe_error
from patwarden.rotation.ports import (
    FreshListing,
    IssueOutcomeUnknown,
    PatIssuer,
    RevocationTagging,
    Sink,
    SinkVersion,
    SinkWriteMeta,
)
from patwarden.secret import Secret

__all__ = ["ActionRunner", "StopOperation"]

_log = logging.getLogger(__name__)


class StopOperation(Exception):  # control flow, never shown to users as an error
    """The operation cannot go on in this run; it stays at its journaled step for the next one."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(kw_only=True)
class ActionRunner:
    """Performs actions for one operation and reports what came of each as an event.

    ``notes`` collects what the outcome should say beside the journal: the promotion hooks'
    notes and the sink tags that failed.
    """

    issuer: PatIssuer
    sinks: Mapping[str, Sink]
    now: Callable[[], datetime]
    promote: Callable[[Operation, Secret | None], Sequence[str]]
    secret: Secret | None = field(default=None, repr=False)
    notes: list[str] = field(default_factory=list)
    # What this run read from each sink before the operation and has not written since: the
    # capture of a sink's previous version answers from it (once) instead of reading again.
    read: dict[str, SinkVersion | None] = field(default_factory=dict)

    def perform(self, action: Action, op: Operation) -> Event:
        """Perform ``action`` for ``op`` and return the resulting event.

        Raises:
            StopOperation: the action can be neither done nor ruled out now (retry next run).
        """
        match action:
            case CreatePat():
                return self._create(op)
            case FindMarked():
                return self._find_marked(op)
            case Proceed():
                return Resume(at=self.now(), has_secret=self.secret is not None)
            case RecoverSecret(sinks=keys):
                return self._recover(op, keys)
            case CapturePrevious(sink=key):
                return self._capture(key)
            case WriteSink(sink=key):
                return self._write(op, key)
            case VerifyPat():
                return self._verify(op)
            case ReadBack(sink=key):
                return self._read_back(key)
            case PromoteToken():
                self.notes += self.promote(op, self.secret)
                return TokenPromoted(at=self.now())
            case RevokePat(authorization_id=pat_id):
                return self._revoke(op, pat_id)
            case TagRevoked(sink=key, authorization_id=pat_id, at=at):
                return self._tag(key, pat_id, at)
            case RestoreSink(sink=key):
                return self._restore(op, key)
            case Wait():
                raise AssertionError("Wait is handled by the engine loop")

    # --- create -------------------------------------------------------------------------------

    def _create(self, op: Operation) -> Event:
        try:
            created = self.issuer.create(
                organization=op.organization,
                display_name=op.display_name,
                scopes=op.scopes,
                valid_to=op.requested_valid_to,
            )
        except IssueOutcomeUnknown as exc:
            return CreateUnknown(reason=exc.message)
        except Exception as exc:
            return CreateFailed(reason=f"Azure DevOps refused the create: {describe_error(exc)}")
        self.secret = created.secret
        return PatCreated(pat=created.pat)

    def _find_marked(self, op: Operation) -> Event:
        try:  # now, not a listing shared by the run: it predates the create
            if isinstance(self.issuer, FreshListing):
                marked = self.issuer.list_marked_fresh(organization=op.organization)
            else:
                marked = self.issuer.list_marked(organization=op.organization)
        except Exception as exc:
            raise StopOperation(
                f"could not check whether the interrupted create of {op.display_name} "
                f"happened: {describe_error(exc)}"
            ) from None
        for pat in marked:
            marker = parse_marker(pat.display_name)
            if marker is not None and marker.operation_id == op.operation_id:
                return MarkedFound(pat=pat)
        return MarkedMissing()

    # --- distribute ---------------------------------------------------------------------------

    def _sink(self, key: str) -> Sink:
        sink = self.sinks.get(key)
        if sink is None:
            raise KeyError(key)
        return sink

    def _recover(self, op: Operation, keys: tuple[str, ...]) -> Event:
        new = _require_new(op)
        for key in keys:
            sink = self.sinks.get(key)
            if sink is None:
                continue
            try:
                version = sink.current_version()
                if not _serves(version, new.authorization_id, op.sink(key).written):
                    continue
                value = sink.read_back()
            except Exception as exc:
                _log.info("cannot recover the new value from %s: %s", key, describe_error(exc))
                continue
            if value is not None:
                self.secret = value
                return SecretRecovered(sink=key)
        return SecretLost(
            reason=(
                f"interrupted after creating PAT {new.authorization_id}; its value was only in "
                "memory and no sink holding it could be read back"
            )
        )

    def _capture(self, key: str) -> Event:
        if key in self.read:
            return PreviousCaptured(sink=key, version=_record(key, self.read.pop(key)))
        try:
            version = self._sink(key).current_version()
        except KeyError:
            return SinkFailed(sink=key, reason="no longer configured")
        except Exception as exc:
            return SinkFailed(sink=key, reason=f"reading its version: {describe_error(exc)}")
        return PreviousCaptured(sink=key, version=_record(key, version))

    def _write(self, op: Operation, key: str) -> Event:
        new = _require_new(op)
        secret = self._require_secret()
        meta = SinkWriteMeta(
            token_name=op.token_name,
            authorization_id=new.authorization_id,
            operation_id=op.operation_id,
            valid_to=new.valid_to,
        )
        try:
            version = self._sink(key).write(secret, meta)
        except KeyError:
            return SinkFailed(sink=key, reason="no longer configured")
        except Exception as exc:
            return SinkFailed(sink=key, reason=f"write failed: {describe_error(exc)}")
        return SinkWritten(
            sink=key,
            version=SinkRecord(
                sink=key,
                authorization_id=version.authorization_id or new.authorization_id,
                ref=version.ref,
            ),
        )

    # --- verify -------------------------------------------------------------------------------

    def _verify(self, op: Operation) -> Event:
        try:
            self.issuer.verify(
                organization=op.organization, secret=self._require_secret(), scopes=op.scopes
            )
        except Exception as exc:
            return VerifyFailed(reason=describe_error(exc))
        return PatVerified()

    def _read_back(self, key: str) -> Event:
        try:
            value = self._sink(key).read_back()
        except KeyError:
            return SinkFailed(sink=key, reason="no longer configured")
        except Exception as exc:
            return SinkFailed(sink=key, reason=f"read back failed: {describe_error(exc)}")
        if value is None:
            return ReadBackDone(sink=key, matched=None)
        return ReadBackDone(sink=key, matched=bool(value == self._require_secret()))

    # --- revoke and restore -------------------------------------------------------------------

    def _revoke(self, op: Operation, pat_id: str) -> Event:
        # Rolling back, a sink this operation never wrote cannot serve its new PAT (one whose
        # target is missing cannot even be read: it must not keep the new PAT valid).
        untouched = (
            {p.sink for p in op.sinks if p.status is SinkStatus.PENDING}
            if op.step is Step.ROLLING_BACK
            else set()
        )
        serving = self._live_servers(pat_id, skip=untouched)
        if serving:
            return RevokeFailed(
                authorization_id=pat_id,
                reason=f"not revoked: {', '.join(serving)} still serve(s) it",
            )
        try:
            self.issuer.revoke(organization=op.organization, authorization_id=pat_id)
        except Exception as exc:
            return RevokeFailed(authorization_id=pat_id, reason=describe_error(exc))
        tag_in = tuple(k for k, sink in self.sinks.items() if isinstance(sink, RevocationTagging))
        return PatRevoked(authorization_id=pat_id, at=self.now(), tag_in=tag_in)

    def _tag(self, key: str, pat_id: str, at: datetime) -> Event:
        sink = self.sinks.get(key)
        if not isinstance(sink, RevocationTagging):
            return TagFailed(sink=key, reason="no longer configured, or cannot tag")
        try:
            sink.mark_revoked(pat_id, at=at)
        except Exception as exc:  # a tag is bookkeeping: report it, never fail the run
            note = f"{key}: could not tag PAT {pat_id} as revoked ({describe_error(exc)})"
            self.notes.append(note)
            return TagFailed(sink=key, reason=note)
        return RevocationTagged(sink=key)

    def _live_servers(self, pat_id: str, *, skip: set[str]) -> list[str]:
        """Return the sinks that serve ``pat_id`` now, or whose version cannot be read."""
        serving = []
        for key, sink in self.sinks.items():
            if key in skip:
                continue
            try:
                version = sink.current_version()
            except Exception as exc:
                serving.append(f"{key} (unreadable: {describe_error(exc)})")
                continue
            if version is not None and version.authorization_id == pat_id:
                serving.append(key)
        return serving

    def _restore(self, op: Operation, key: str) -> Event:
        progress = op.sink(key)
        sink = self.sinks.get(key)
        if sink is None:
            return RestoreFailed(sink=key, reason="no longer configured")
        new = _require_new(op)
        try:
            version = sink.current_version()
        except Exception:
            version = _UNKNOWN
        if version is not _UNKNOWN and not _serves(version, new.authorization_id, progress.written):
            return SinkRestored(sink=key)  # the write never landed
        previous = progress.previous
        target = None if previous is None else _version(previous)
        try:
            restored = sink.restore(target)
        except Exception as exc:
            return RestoreFailed(sink=key, reason=describe_error(exc))
        if restored:
            return SinkRestored(sink=key)
        return RestoreFailed(sink=key, reason="the sink cannot restore its previous version")

    def _require_secret(self) -> Secret:
        if self.secret is None:
            raise AssertionError("the state machine asked for the secret while it is unknown")
        return self.secret


_UNKNOWN = SinkVersion(ref="\0unknown")


def _serves(version: SinkVersion | None, pat_id: str, written: SinkRecord | None) -> bool:
    """Return whether a sink at ``version`` serves PAT ``pat_id`` (or may: conservative)."""
    if version is None:
        return False
    if version.authorization_id is not None:
        return version.authorization_id == pat_id
    return written is None or version.ref == written.ref


def _record(key: str, version: SinkVersion | None) -> SinkRecord | None:
    if version is None:
        return None
    return SinkRecord(sink=key, authorization_id=version.authorization_id, ref=version.ref)


def _version(record: SinkRecord) -> SinkVersion:
    return SinkVersion(ref=record.ref or "", authorization_id=record.authorization_id)


def _require_new(op: Operation) -> IssuedPat:
    if op.new is None:
        raise AssertionError(f"operation {op.operation_id} has no new PAT at {op.step}")
    return op.new
