"""A seeded snapshot with every state the status page and the metrics show (relative to the
tests' clock), for the endpoint, metric and browser tests."""

from __future__ import annotations

from datetime import timedelta

from patwarden.service.snapshot import AuditView, IdentityView, Snapshot, TokenView
from tests.support.clock import now


def seeded_snapshot(*, broken_sign_in: bool = False) -> Snapshot:
    at = now()
    tokens = (
        TokenView(
            name="flux-git",
            organization="contoso",
            status="ok",
            current_authorization_id="11111111-1111-1111-1111-111111111111",
            issued_at=at - timedelta(days=5),
            valid_to=at + timedelta(days=25),
            next_rotation=at + timedelta(days=18),
            last_outcome="rotated",
        ),
        TokenView(
            name="nuget-feed",
            organization="contoso",
            status="failed",
            current_authorization_id="22222222-2222-2222-2222-222222222222",
            issued_at=at - timedelta(days=28),
            expiring=True,
            valid_to=at + timedelta(days=2),
            next_rotation=at - timedelta(hours=1),
            last_outcome="failed",
            problem="last rotation failed: Key Vault refused the write <script>x</script>",
            fix="grant the writer Key Vault Secrets Officer",
        ),
        TokenView(
            name="argo-repo",
            organization="fabrikam",
            status="drift",
            current_authorization_id="33333333-3333-3333-3333-333333333333",
            issued_at=at - timedelta(days=10),
            valid_to=at + timedelta(days=20),
            next_rotation=at + timedelta(days=13),
            last_outcome="not_due",
            drift=("variable_group: the sink is empty and could not be rewritten",),
            problem="variable_group: the sink is empty and could not be rewritten",
            fix="the last run could not repair it: check the sink and its writer's access",
        ),
    )
    rotator = IdentityView(
        name="rotator",
        kind="user",
        roles=("rotator",),
        ok=not broken_sign_in,
        relogin_now=broken_sign_in,
        detail="refresh token revoked" if broken_sign_in else "signed in as rotator@contoso",
        fix="run `patwarden login --identity rotator`" if broken_sign_in else None,
        relogin_deadline=at + timedelta(days=9, hours=4),
        relogin_cause="inactivity",
        checked_at=at,
    )
    writer = IdentityView(name="writer", kind="service_principal", roles=("sink writer",))
    audit = (
        AuditView(
            at=at - timedelta(minutes=5),
            kind="rotated",
            token="flux-git",
            operation_id="op1",
            authorization_id="11111111-1111-1111-1111-111111111111",
            detail="sinks=2",
        ),
    )
    return Snapshot(
        at=at,
        role="leader",
        config_source="/etc/patwarden/patwarden.yaml",
        tokens=tokens,
        identities=(rotator, writer),
        audit=audit,
        last_pass_at=at - timedelta(minutes=3),
        next_pass_at=at + timedelta(minutes=12),
    )
