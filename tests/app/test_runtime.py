"""The runtime: specs from config, and the fleet over the real engine against the emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from patwarden.app.runtime import Runtime
from patwarden.config.model import load_config
from patwarden.domain.marker import format_marker
from patwarden.errors import ConfigError
from patwarden.rotation.outcomes import FindingKind, OutcomeKind
from tests.cli.support import cli, logged_requests
from tests.conftest import RunningEmulator
from tests.support.configs import token_entry, write_config
from tests.support.device_codes import login_in_process
from tests.support.issued import assert_no_secret_in_state
from tests.support.pats import check_pat, check_same
from tests.support.sinks import key_vault_value, key_vault_versions

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "11111111-2222-3333-4444-555555555555"


# --- against the emulator ----------------------------------------------------------------------


@pytest.fixture
def runtime_for(emulator: RunningEmulator, tmp_path: Path) -> Iterator[Any]:
    built: list[Runtime] = []

    def make(tokens: dict[str, Any], **top: Any) -> Runtime:
        path = write_config(emulator, tmp_path, tokens=tokens, **top)
        if not (tmp_path / "state" / "rotator.cache").exists():
            login_in_process(emulator, path)
        runtime = Runtime(config=load_config(path))
        built.append(runtime)
        return runtime

    yield make
    for runtime in built:
        runtime.close()


def test_a_rotation_reads_the_key_vault_secret_once_before_and_once_after_writing_it(
    emulator: RunningEmulator, tmp_path: Path, runtime_for: Any
) -> None:
    """The version read to check the sink before the create is the rollback target captured
    right after it; the end-of-run check answers from the read-back (docs/sinks.md)."""
    runtime: Runtime = runtime_for({"svc": token_entry(emulator, tmp_path, "svc", group=False)})
    for force in ((), ("svc",)):  # the first rotation, then a forced one of a served token
        emulator.admin("DELETE", "/requests")
        report = runtime.rotate(runtime.specs(), force=force)
        assert [o.kind for o in report.outcomes] == [OutcomeKind.ROTATED]
        assert report.outcomes[0].problems == ()
        vault = [
            r["method"] for r in logged_requests(emulator) if r["path"].startswith("/secrets/")
        ]
        assert vault == ["GET", "PUT", "GET"], (force, vault)
    versions = key_vault_versions(emulator, "svc-pat")
    assert len(versions) == 2


@pytest.mark.slow
def test_a_fleet_rotates_every_token_and_lists_the_pats_once(
    emulator: RunningEmulator, tmp_path: Path, runtime_for: Any
) -> None:
    names = [f"svc-{i}" for i in range(5)]
    tokens = {name: token_entry(emulator, tmp_path, name, group=False) for name in names}
    runtime: Runtime = runtime_for(tokens, rotation={"concurrency": 3})
    emulator.admin("DELETE", "/requests")
    seen: list[str] = []
    report = runtime.rotate(
        runtime.specs(), on_progress=lambda p: seen.append(p.outcome.token_name)
    )
    assert [o.kind for o in report.outcomes] == [OutcomeKind.ROTATED] * 5, report.outcomes
    assert 1 <= report.concurrency <= 3, "rotation.concurrency is the most workers"
    assert sorted(seen) == names
    lists = [
        r
        for r in logged_requests(emulator)
        if r["method"] == "GET"
        and "/_apis/tokens/pats" in r["path"]
        and "authorizationId" not in r["path"]
    ]
    assert len(lists) == 1, "every worker shares one listing per organization"
    for name in names:
        value = key_vault_value(emulator, f"{name}-pat")
        check_pat(emulator, value, works=True, what=f"{name} in Key Vault")
        file_value = (tmp_path / "sinks" / f"{name}.pat").read_text()
        check_same(file_value, value, what=f"{name}: file and Key Vault")
    assert_no_secret_in_state(emulator, runtime.state_path)

    again = runtime.rotate(runtime.specs())
    assert {o.kind for o in again.outcomes} == {OutcomeKind.NOT_DUE}
    assert again.exit_code == 0


@pytest.mark.slow
def test_grace_period_revocation_is_audited_and_tagged_in_key_vault(
    emulator: RunningEmulator, tmp_path: Path, runtime_for: Any
) -> None:
    tokens = {"flux": token_entry(emulator, tmp_path, "flux", group=False, revoke_after="0s")}
    runtime: Runtime = runtime_for(tokens)
    first = runtime.rotate(runtime.specs()).outcomes[0]
    old_value = key_vault_value(emulator, "flux-pat")
    second = runtime.rotate(runtime.specs(), force={"flux"}).outcomes[0]
    assert second.kind is OutcomeKind.ROTATED
    check_pat(emulator, old_value, works=False, what="the previous PAT (grace 0s)")
    check_pat(emulator, key_vault_value(emulator, "flux-pat"), works=True, what="the new PAT")
    tags = {
        v["tags"]["authorizationId"]: v["tags"] for v in key_vault_versions(emulator, "flux-pat")
    }
    assert "revokedAt" in tags[first.new_authorization_id or ""]
    assert "revokedAt" not in tags[second.new_authorization_id or ""]
    with runtime.open_store() as store:
        kinds = [(r.kind, r.authorization_id) for r in store.audit()]
    assert ("revoked_previous", first.new_authorization_id) in kinds


@pytest.mark.slow
def test_hooks_run_after_promotion_and_a_failure_is_audited(
    emulator: RunningEmulator, tmp_path: Path, runtime_for: Any
) -> None:
    out = tmp_path / "hook.out"
    tokens = {
        "good": token_entry(
            emulator,
            tmp_path,
            "good",
            group=False,
            on_rotate={"command": ["sh", "-c", f'echo "$PATWARDEN_AUTHORIZATION_ID" > {out}']},
        ),
        "bad": token_entry(
            emulator, tmp_path, "bad", group=False, on_rotate={"command": ["false"]}
        ),
    }
    runtime: Runtime = runtime_for(tokens)
    report = runtime.rotate(runtime.specs())
    good, bad = report.outcomes
    assert good.kind is bad.kind is OutcomeKind.ROTATED  # a failing hook never undoes a rotation
    assert out.read_text().strip() == good.new_authorization_id
    assert "hook command sh: ok (sh exited with status 0)" in good.notes
    assert any(n.startswith("hook command false: FAILED") for n in bad.notes)
    with runtime.open_store() as store:
        failed = [r for r in store.audit() if r.kind == "hook_failed"]
    assert [r.token_name for r in failed] == ["bad"]
    assert report.exit_code == 0


@pytest.mark.slow
def test_plan_reads_only_the_state(
    emulator: RunningEmulator, tmp_path: Path, runtime_for: Any
) -> None:
    runtime: Runtime = runtime_for({"flux": token_entry(emulator, tmp_path, "flux", group=False)})
    emulator.admin("DELETE", "/requests")
    (plan,) = runtime.plan(runtime.specs())
    assert plan.decision.is_due
    assert plan.decision.reason == "no PAT issued yet"
    assert logged_requests(emulator) == []
    runtime.rotate(runtime.specs())
    (plan,) = runtime.plan(runtime.specs())
    assert not plan.decision.is_due
    assert plan.state is not None
    assert plan.state.current is not None


@pytest.mark.slow
def test_revoke_the_current_pat_then_rotate_issues_a_new_one(
    emulator: RunningEmulator, tmp_path: Path, runtime_for: Any
) -> None:
    runtime: Runtime = runtime_for({"flux": token_entry(emulator, tmp_path, "flux", group=False)})
    rotated = runtime.rotate(runtime.specs()).outcomes[0]
    value = key_vault_value(emulator, "flux-pat")
    (spec,) = runtime.specs()
    (revoked,) = runtime.revoke(spec)
    assert revoked.authorization_id == rotated.new_authorization_id
    check_pat(emulator, value, works=False, what="the revoked PAT")
    (plan,) = runtime.plan([spec])
    assert plan.decision.is_due
    assert plan.state is not None
    assert plan.state.current is None
    assert plan.decision.reason.startswith("no current PAT (it was revoked or lost)")
    with pytest.raises(ConfigError, match="has no current PAT"):
        runtime.revoke(spec)
    after = runtime.rotate([spec]).outcomes[0]
    assert after.kind is OutcomeKind.ROTATED
    check_pat(emulator, key_vault_value(emulator, "flux-pat"), works=True, what="the new PAT")
    with runtime.open_store() as store:
        audit = [(r.kind, r.authorization_id) for r in store.audit()]
    assert ("revoked_by_user", rotated.new_authorization_id) in audit


@pytest.mark.slow
def test_adopt_rebuilds_a_lost_state(
    emulator: RunningEmulator, tmp_path: Path, runtime_for: Any
) -> None:
    runtime: Runtime = runtime_for({"flux": token_entry(emulator, tmp_path, "flux", group=False)})
    rotated = runtime.rotate(runtime.specs()).outcomes[0]
    for path in runtime.state_path.parent.glob("state.db*"):
        if path.is_file():
            path.unlink()
    refused = runtime.rotate(runtime.specs())
    assert refused.outcomes[0].kind is OutcomeKind.FAILED
    assert "run `patwarden adopt` first" in refused.outcomes[0].reason
    assert [f.kind for f in refused.findings] == [FindingKind.STATE_MISSING]
    (adopted,) = runtime.adopt(runtime.specs(), replace_existing=False)
    assert adopted.adopted
    assert adopted.current_authorization_id == rotated.new_authorization_id
    assert runtime.rotate(runtime.specs()).outcomes[0].kind is OutcomeKind.NOT_DUE
    with runtime.open_store() as store:
        kinds = [r.kind for r in store.audit()]
    assert kinds.count("state_missing") == 1
    assert "adopted" in kinds


@pytest.mark.slow
def test_throttling_pauses_the_identity_and_every_token_still_rotates(
    emulator: RunningEmulator, tmp_path: Path, runtime_for: Any
) -> None:
    names = [f"t{i}" for i in range(6)]
    tokens = {name: token_entry(emulator, tmp_path, name, group=False) for name in names}
    runtime: Runtime = runtime_for(tokens, rotation={"concurrency": 3})
    emulator.admin("DELETE", "/requests")
    limits = {
        "enabled": True,
        "limit": 6,
        "window_seconds": 2,
        "delay_threshold": 4,
        "delay_ms": 20,
    }
    emulator.admin("PUT", "/rate-limit", json=limits)
    try:
        report = runtime.rotate(runtime.specs())
    finally:
        emulator.admin("PUT", "/rate-limit", json={"enabled": False})
    assert [o.kind for o in report.outcomes] == [OutcomeKind.ROTATED] * 6, report.outcomes
    statuses = [
        r["status"]
        for r in logged_requests(emulator)
        if r["path"].startswith(("/vssps/", "/devops/"))
    ]
    assert len(statuses) > limits["limit"], "the run needed more than one window's budget"
    # Every worker waited for the window instead of hammering: at most the requests already in
    # flight when the budget ran out were refused, and the run spans more than one window.
    assert statuses.count(429) <= 3
    assert report.seconds >= limits["window_seconds"]


@pytest.mark.slow
def test_tokens_of_two_organizations_get_pats_bound_to_their_own(
    emulator: RunningEmulator, tmp_path: Path, runtime_for: Any
) -> None:
    emulator.admin("POST", "/organizations", json={"name": "fabrikam"})
    tokens = {
        "ci": token_entry(emulator, tmp_path, "ci", group=False, organization="contoso"),
        "feed": token_entry(emulator, tmp_path, "feed", group=False, organization="fabrikam"),
    }
    runtime: Runtime = runtime_for(tokens, organizations=["contoso", "fabrikam"])
    report = runtime.rotate(runtime.specs())
    assert [o.kind for o in report.outcomes] == [OutcomeKind.ROTATED] * 2, report.outcomes
    ci, feed = key_vault_value(emulator, "ci-pat"), key_vault_value(emulator, "feed-pat")
    check_pat(emulator, ci, works=True, what="ci in contoso", org="contoso")
    check_pat(emulator, ci, works=False, what="ci in fabrikam", org="fabrikam")
    check_pat(emulator, feed, works=True, what="feed in fabrikam", org="fabrikam")
    check_pat(emulator, feed, works=False, what="feed in contoso", org="contoso")


class _CountingStore:
    """A real store that counts the audit records each ``audit`` query hands back."""

    def __init__(self, inner: Any, reads: list[tuple[dict[str, Any], int]]) -> None:
        self._inner = inner
        self._reads = reads

    def __enter__(self) -> _CountingStore:
        self._inner.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._inner.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def audit(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        records = list(self._inner.audit(*args, **kwargs))
        self._reads.append(({"since": args[0] if args else None, **kwargs}, len(records)))
        return iter(records)


@pytest.mark.slow
def test_a_nothing_due_run_reads_no_audit_history(
    emulator: RunningEmulator, tmp_path: Path, runtime_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thousands of audited rotations later, a run with nothing due reads a bounded number of
    audit records (the rotator's recent sign-ins), not the log."""
    from patwarden.domain.models import AuditRecord
    from tests.support import clock

    names = [f"svc-{i}" for i in range(3)]
    tokens = {name: token_entry(emulator, tmp_path, name, group=False) for name in names}
    runtime: Runtime = runtime_for(tokens)
    first = runtime.rotate(runtime.specs())
    assert [o.kind for o in first.outcomes] == [OutcomeKind.ROTATED] * 3, first.outcomes
    with runtime.open_store() as store:
        for i in range(3000):
            at = clock.now() - timedelta(minutes=3000 - i)
            store.append_audit(
                AuditRecord(at=at, kind=("rotated", "revoked")[i % 2], token_name=names[i % 3])
            )
    reads: list[tuple[dict[str, Any], int]] = []
    real_open = runtime.open_store
    monkeypatch.setattr(runtime, "open_store", lambda: _CountingStore(real_open(), reads))

    again = runtime.rotate(runtime.specs())

    assert [o.kind for o in again.outcomes] == [OutcomeKind.NOT_DUE] * 3, again.outcomes
    assert reads, "the run looks for the rotator's last sign-in failure"
    for query, returned in reads:
        assert query.get("kinds") or query.get("limit") or query.get("tokens"), query
        assert returned <= 10, (query, returned)


@pytest.mark.slow
def test_full_access_only_for_tokens_that_allow_it(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    tokens = {
        "wide": token_entry(
            emulator, tmp_path, "wide", group=False, scopes=["app_token"], allow_full_access=True
        ),
        "narrow": token_entry(emulator, tmp_path, "narrow", group=False),
    }
    config = write_config(emulator, tmp_path, tokens=tokens)
    login_in_process(emulator, config)
    result = cli("rotate", "--token", "wide", "-o", "json", config=config)
    assert result.code == 0, result.output
    assert json.loads(result.stdout)["tokens"][0]["outcome"] == "rotated"
    check_pat(emulator, key_vault_value(emulator, "wide-pat"), works=True, what="full access")
    with Runtime(config=load_config(config)) as runtime:
        issuer = runtime.issuer("rotator")
        valid_to = datetime.now(UTC) + timedelta(days=1)
        for name in ("narrow", "other"):  # configured without allow_full_access, or unknown
            with pytest.raises(ConfigError, match="app_token"):
                issuer.create(
                    organization="contoso",
                    display_name=format_marker(token_name=name, operation_id="b" * 32),
                    scopes=["app_token"],
                    valid_to=valid_to,
                )
