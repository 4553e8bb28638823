"""The rotation's tail in the engine: the revocation journaled, audited once and tagged, under the
token's lock, whatever crashes in between; orphans and ``revoke`` tagged alike; hook notes on the
outcome (:mod:`patwarden.rotation.tail`)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from patwarden.domain.marker import format_marker
from patwarden.domain.operation import Step
from patwarden.errors import ConfigError, SinkError
from patwarden.rotation.outcomes import Finding, FindingKind, OutcomeKind, Promotion
from patwarden.rotation.ports import HookFailed, RevocationTagging
from patwarden.rotation.tail import finding_audit
from tests.rotation.fakes import T0, Crash, FakeSink, TaggingSink, spec
from tests.rotation.harness import Harness

DAY = timedelta(days=1)


@pytest.fixture
def world(tmp_path: Path) -> Harness:
    return Harness(
        path=tmp_path / "state.db",
        sinks=[TaggingSink("kv"), FakeSink("group")],
        token=spec(revoke_after=timedelta(0)),
    )


def _kv(world: Harness) -> TaggingSink:
    sink = world.sinks[0]
    assert isinstance(sink, TaggingSink)
    return sink


def _revocations(world: Harness, pat_id: str) -> int:
    return sum(
        1
        for r in world.store.audit()
        if r.kind == "revoked_previous" and r.authorization_id == pat_id
    )


def _reopen(world: Harness) -> None:
    """A new process: a new store connection and engine on the same state file."""
    world.store = type(world.store)(path=world.path, now=world.clock.now)


def test_only_sinks_with_the_ability_are_revocation_tagging() -> None:
    assert isinstance(TaggingSink("kv"), RevocationTagging)
    assert not isinstance(FakeSink("group"), RevocationTagging)


def test_the_previous_pat_is_revoked_audited_once_and_tagged_in_the_same_run(
    world: Harness,
) -> None:
    first = world.run().outcomes[0].new_authorization_id
    assert first is not None
    report = world.run(force={world.token.name})
    assert report.outcomes[0].kind is OutcomeKind.ROTATED
    assert first not in world.issuer.active()
    assert _revocations(world, first) == 1
    assert _kv(world).tagged(first)
    (op,) = [o for o in world.store.operations(world.token.name) if o.previous is not None]
    assert op.step is Step.DONE
    steps = [entry.step for entry in world.store.journal(op.operation_id)]
    # journaled (with the audit record) before the tag, which is journaled before "done"
    assert steps[-3:] == ["revoke_pending", "revoked", "done"], steps


@pytest.mark.parametrize(
    ("target", "method", "after"),
    [
        ("issuer", "revoke", False),
        ("issuer", "revoke", True),  # revoked, killed before the step (and its audit) was saved
        ("kv", "mark_revoked", False),  # revoked and audited, killed before the tag
        ("kv", "mark_revoked", True),  # tagged, killed before the tag was journaled
    ],
)
def test_a_crash_anywhere_in_the_tail_resumes_to_one_audit_record_and_the_tag(
    world: Harness, target: str, method: str, after: bool
) -> None:
    first = world.run().outcomes[0].new_authorization_id
    assert first is not None
    faulty = world.issuer if target == "issuer" else _kv(world)
    faulty.faults.fail(method, Crash(), after=after)
    with pytest.raises(Crash):
        world.run(force={world.token.name})
    _reopen(world)

    again = world.run()

    assert again.outcomes[0].kind is OutcomeKind.NOT_DUE
    assert first not in world.issuer.active()
    assert _revocations(world, first) == 1
    assert _kv(world).tagged(first)
    assert not world.store.operations(world.token.name, unfinished=True)
    world.run()
    assert _revocations(world, first) == 1, "audited exactly once"


def test_a_pat_revoked_before_a_crash_in_tagging_is_no_longer_the_previous_one(
    world: Harness,
) -> None:
    first = world.run().outcomes[0].new_authorization_id
    _kv(world).faults.fail("mark_revoked", Crash())
    with pytest.raises(Crash):
        world.run(force={world.token.name})
    _reopen(world)

    state = world.store.load_token(world.token.name)

    assert first not in world.issuer.active()
    assert state is not None
    assert state.previous is None, "recorded with the revocation, before the tag"
    assert state.revoke_at is None
    (plan,) = world.engine().plan([world.token])
    assert plan.previous == ()


def test_a_failed_tag_is_a_note_on_the_outcome_and_never_retried(world: Harness) -> None:
    first = world.run().outcomes[0].new_authorization_id
    _kv(world).faults.fail("mark_revoked", SinkError("vault says 403"))
    outcome = world.run(force={world.token.name}).outcomes[0]
    assert outcome.kind is OutcomeKind.ROTATED
    assert any("could not tag PAT" in note and "403" in note for note in outcome.notes)
    assert _revocations(world, first or "") == 1
    requests = _kv(world).tag_requests
    world.run()
    assert _kv(world).tag_requests == requests
    assert not world.store.operations(world.token.name, unfinished=True)


def test_a_grace_period_ending_on_a_later_run_is_revoked_audited_and_tagged_then(
    tmp_path: Path,
) -> None:
    world = Harness(path=tmp_path / "s.db", sinks=[TaggingSink("kv")], token=spec(revoke_after=DAY))
    first = world.run().outcomes[0].new_authorization_id or ""
    world.run(force={world.token.name})
    assert first in world.issuer.active()
    assert not _kv(world).tagged(first)
    world.advance(DAY)
    report = world.run()
    assert [f.authorization_id for f in report.findings] == [first]
    assert _revocations(world, first) == 1
    assert _kv(world).tagged(first)


def test_an_orphan_is_revoked_audited_and_tagged_by_the_engine(world: Harness) -> None:
    world.run()
    orphan = world.issuer.add_external(
        display_name=format_marker(token_name=world.token.name, operation_id="f" * 32),
        age=timedelta(hours=2),
    )
    _kv(world)._add("stale", orphan.authorization_id)  # a version that once held it
    _kv(world).restore(_kv(world)._public(_kv(world).versions[0]))
    report = world.run()
    assert orphan.authorization_id not in world.issuer.active()
    [record] = [r for r in world.store.audit() if r.authorization_id == orphan.authorization_id]
    assert record.kind == "orphan_revoked"
    [finding] = report.findings
    assert dict(record.detail) == {"detail": finding.detail}  # what `patwarden audit` shows
    assert _kv(world).tagged(orphan.authorization_id)
    assert report.outcomes[0].kind is OutcomeKind.NOT_DUE


def test_revoke_now_revokes_records_and_tags_under_the_lock(world: Harness) -> None:
    first = world.run().outcomes[0].new_authorization_id or ""
    targets, notes = world.engine().revoke(world.token, previous=False, where="s.db")
    assert ([t.authorization_id for t in targets], notes) == ([first], [])
    assert first not in world.issuer.active()
    assert _kv(world).tagged(first)
    records = [r for r in world.store.audit() if r.authorization_id == first]
    assert records[-1].kind == "revoked_by_user"
    assert dict(records[-1].detail) == {"which": "current", "organization": "contoso"}


@pytest.mark.parametrize("previous", [True, False])
def test_revoke_now_of_a_pat_the_state_does_not_have_revokes_nothing_and_says_so(
    world: Harness, previous: bool
) -> None:
    world.run()  # one rotation: a current PAT, no previous one
    if not previous:  # revoked once: the state has no current PAT any more
        world.engine().revoke(world.token, previous=False, where="s.db")
    active = world.issuer.active()

    with pytest.raises(ConfigError) as raised:
        world.engine().revoke(world.token, previous=previous, where="s.db")

    which = "previous" if previous else "current"
    assert f"token 'flux-git' has no {which} PAT in the state store s.db" in raised.value.message
    assert "patwarden status" in (raised.value.hint or "")
    assert world.issuer.active() == active


def test_hook_notes_are_on_the_outcome_even_when_a_hook_failed(world: Harness) -> None:
    def hooks(token: object, promotion: Promotion) -> tuple[str, ...]:
        raise HookFailed("hook b: FAILED", notes=("hook a: ok", "hook b: FAILED"))

    outcome = world.engine(on_promoted=hooks).run([world.token]).outcomes[0]
    assert outcome.kind is OutcomeKind.ROTATED
    assert outcome.notes[-2:] == ("hook a: ok", "hook b: FAILED")
    failed = [r for r in world.store.audit() if r.kind == "hook_failed"]
    assert [dict(r.detail)["detail"] for r in failed] == ["hook b: FAILED"]


def test_the_new_pat_travels_on_the_promotion_only_for_redaction(world: Harness) -> None:
    # Issue 11, item 2: the hook runner scrubs the known value from hook output.
    heard: list[Promotion] = []

    def hooks(token: object, promotion: Promotion) -> tuple[str, ...]:
        heard.append(promotion)
        return ()

    world.engine(on_promoted=hooks).run([world.token])
    (promotion,) = heard
    (secret,) = promotion.secrets
    assert secret.reveal() == world.issuer.pats[promotion.authorization_id].value
    assert secret.reveal() not in repr(promotion)


def test_a_findings_audit_record_names_its_sink_when_it_has_one() -> None:
    drift = Finding(kind=FindingKind.DRIFT, token_name="t", detail="changed", sink="kv")
    orphan = Finding(kind=FindingKind.ORPHAN_REVOKED, token_name="t", detail="gone")
    assert finding_audit(drift, T0).detail == (("detail", "changed"), ("sink", "kv"))
    assert finding_audit(orphan, T0).detail == (("detail", "gone"),)
    assert finding_audit(drift, T0).kind == "drift"
