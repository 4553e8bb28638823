"""The crash matrix of issue 6: SIGKILL ``patwarden rotate`` at every protocol step and sink write.

Each case parks one request of a running ``rotate`` in the emulator (a ``hold`` fault: production
code gets no test hooks), waits until it is parked, SIGKILLs the process, and then lets the parked
request either go on (``continue``: the service acts although the client died) or drops its
connection (``drop``: it never reached the service). A hold with ``after`` parks the *answer*
instead: the service acted and the client never learned it. Then ``rotate`` runs again, twice (the
second past the orphan margin), and the invariants are checked through the emulator and the sink
files:

1. while the process was dead, and after, every sink served a PAT that authenticates;
2. after recovery exactly one active patwarden PAT exists for the token, and every sink serves it;
3. nothing secret in any output, log, the state store or any file but the sinks (``leak_scan``).

To reach a request that is not the first of its route (the read-back after the verification, the
variable-group read after the file write), a case holds a chain: each earlier request is parked,
the next hold is installed, and it is let go. The file write makes no request, so the kill around
it holds the next request (the variable-group read) and checks that the file already changed.

Most cases crash a forced second rotation (a working PAT is in every sink, and the previous PAT is
revoked in the same run: ``revoke_after: 0s``); the ``first-*`` cases crash the very first one.

The rotation's tail is journaled (``revoke_pending`` → ``revoked`` → one tag per Key Vault sink →
``done``), so the cases around it — the revoke request, the moment right after the revocation and
its audit record were saved (the Key Vault version listing that starts the tag), each Key Vault
tag request — also check that a previous PAT that ends revoked is audited ``revoked_previous``
exactly once and that every Key Vault version holding it ends tagged ``revokedAt``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from tests.conftest import RunningEmulator
from tests.reliability.crash_support import Fleet, route
from tests.reliability.figures import record
from tests.reliability.invariants import wait_until
from tests.reliability.leaks import LeakScanner

pytestmark = pytest.mark.slow

TOKEN = "crash"
ORPHAN_MARGIN = 1.0  # seconds (``rotation.orphan_margin: 1s``)


@dataclass(frozen=True)
class CrashPoint:
    """Where to kill ``rotate``, what happens to the request it was waiting for, and what the
    next run must find (``recovery``: a finding of the rerun, "" for none)."""

    name: str
    chain: tuple[str, ...]  # routes (crash_support.ROUTES) held in turn; the last is the kill point
    release: Literal["continue", "drop"]
    recovery: str
    after: bool = False  # the last hold parks the answer: the service already acted
    first: bool = False  # crash the first rotation (empty sinks) instead of a forced second one
    created: bool = True  # the crashed run created a PAT (the kill came after the create acted)
    file_written: bool = False  # the file sink must already hold the new PAT when killed
    failing: str | None = None  # a route refused (403) throughout the crashed run: rolls it back

    def __str__(self) -> str:
        return self.name

    @property
    def rerun_outcome(self) -> str:
        """A rolled-back first rotation leaves the token due: the rerun rotates it."""
        rotates = self.first and ("failed" in self.recovery or not self.recovery)
        return "rotated" if rotates else "not_due"


CREATE_LOST = "resumed from creating: failed"
DIST_DONE = "resumed from distributing: done"
DIST_FAILED = "resumed from distributing: failed"
VERIFY_DONE = "resumed from verifying: done"
REVOKED = "revoked previous PAT"
ROLLBACK = "resumed from rolling_back: failed"
TAGGED = "resumed from revoked: done"
P = CrashPoint
POINTS = [
    # --- the first rotation: nothing served yet -----------------------------------------------
    P("first-list", ("list",), "drop", "", first=True, created=False),
    P("first-create-never-reached", ("create",), "drop", CREATE_LOST, first=True, created=False),
    P("first-create-acted-client-died", ("create",), "continue", CREATE_LOST, first=True),
    P("first-create-answer-lost", ("create",), "drop", CREATE_LOST, after=True, first=True),
    P("first-kv-write-acted", ("kv_write",), "continue", DIST_DONE, first=True),
    P("first-vg-write-answer-lost", ("vg_write",), "drop", DIST_DONE, after=True, first=True),
    P("first-verify", ("verify",), "drop", VERIFY_DONE, first=True),
    # --- a forced rotation of a working token --------------------------------------------------
    P("list", ("list",), "drop", "", created=False),
    P("create-never-reached", ("create",), "drop", CREATE_LOST, created=False),
    P("create-acted-client-died", ("create",), "continue", CREATE_LOST),
    P("create-answer-lost", ("create",), "drop", CREATE_LOST, after=True),
    # the sink check before the create; the version captured after it reuses that read
    P("kv-read-before-create", ("kv_read",), "continue", "", created=False),
    P("kv-write-never-reached", ("kv_write",), "drop", DIST_FAILED),
    P("kv-write-acted-client-died", ("kv_write",), "continue", DIST_DONE),
    P("kv-write-answer-lost", ("kv_write",), "drop", DIST_DONE, after=True),
    P("file-write", ("kv_write", "vg_read"), "continue", DIST_DONE, file_written=True),
    P("vg-write-never-reached", ("vg_write",), "drop", DIST_DONE),
    P("vg-write-acted-client-died", ("vg_write",), "continue", DIST_DONE),
    P("vg-write-answer-lost", ("vg_write",), "drop", DIST_DONE, after=True),
    P("verify", ("verify",), "drop", VERIFY_DONE),
    P("verify-answer-lost", ("verify",), "drop", VERIFY_DONE, after=True),
    P("kv-read-back", ("verify", "kv_read"), "drop", VERIFY_DONE),
    # the grace-period check before the revoke (is the previous PAT still served anywhere?)
    P("previous-served-check", ("verify", "vg_read"), "drop", REVOKED),
    P("revoke-never-reached", ("revoke",), "drop", REVOKED),
    P("revoke-acted-client-died", ("revoke",), "continue", REVOKED),
    P("revoke-answer-lost", ("revoke",), "drop", REVOKED, after=True),
    # the tail: revoked and audited (one transaction with the "revoked" step), then tagged
    P("revoked-audited-before-tag", ("kv_versions",), "drop", TAGGED),
    P("kv-tag-revoked", ("kv_tag",), "drop", TAGGED),
    P("kv-tag-revoked-acted", ("kv_tag",), "continue", TAGGED),
    P("kv-tag-revoked-answer-lost", ("kv_tag",), "drop", TAGGED, after=True),
    # --- a rollback (the variable group refuses the write) killed half-way ---------------------
    P("rollback-kv-restore", ("kv_write", "kv_write"), "drop", ROLLBACK, failing="vg_write"),
    P(
        "rollback-kv-restore-acted",
        ("kv_write", "kv_write"),
        "continue",
        ROLLBACK,
        failing="vg_write",
    ),
    P("rollback-revoke-new", ("revoke",), "drop", ROLLBACK, failing="vg_write"),
    P("rollback-revoke-new-acted", ("revoke",), "continue", ROLLBACK, failing="vg_write"),
]


def _group(point: CrashPoint) -> str:
    """Two xdist groups of about equal work (each worker starts one emulator)."""
    return f"crash-matrix-{POINTS.index(point) % 2}"


@pytest.mark.parametrize(
    "point",
    [pytest.param(p, id=p.name, marks=pytest.mark.xdist_group(_group(p))) for p in POINTS],
)
def test_rotate_killed_at_this_point_recovers(
    point: CrashPoint, emulator: RunningEmulator, tmp_path: Path, leak_scan: LeakScanner
) -> None:
    fleet = Fleet(emulator, tmp_path, leak_scan, tokens=(TOKEN,))
    try:
        crash_and_recover(fleet, point)
    finally:
        fleet.clear_faults()
        fleet.close()
    record("crash_matrix", point=point.name, survived=1)


def crash_and_recover(fleet: Fleet, point: CrashPoint) -> None:
    before: str | None = None
    previous_id: str | None = None
    args: tuple[str, ...] = ()
    if not point.first:
        setup = fleet.rotate()
        assert setup.code == 0, setup.stderr[-3000:]
        assert fleet.settled_problems(TOKEN) == []
        before = fleet.served(TOKEN)["key_vault"]
        previous_id = setup.document()["tokens"][0]["new_authorization_id"]
        args = ("--force",)
    pats_before = len(fleet.marked(TOKEN))
    if point.failing:
        refuse = {"route": route(point.failing, TOKEN), "kind": "status", "status": 403}
        fleet.emulator.admin("POST", "/faults", json=refuse)

    # Run until the request of the crash point is parked, then SIGKILL.
    last = len(point.chain) - 1
    fleet.hold(route(point.chain[0], TOKEN), after=point.after and last == 0)
    process = fleet.start("rotate", "-o", "json", *args)
    try:
        for index, name in enumerate(point.chain):
            held = fleet.wait_held(process)
            parked = f"{held[0]['method']} {held[0]['path']}".split("?")[0]
            assert re.search(route(name, TOKEN), parked), (name, parked)
            if index < last:
                after = point.after and index + 1 == last
                fleet.hold(route(point.chain[index + 1], TOKEN), after=after)
                assert fleet.release("continue", count=1) == 1
        crashed_at = time.monotonic()
        killed = fleet.kill(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert killed.code == -9

    # While nothing runs, every sink still serves a PAT that works.
    assert fleet.serving_problems(TOKEN, allow_empty=point.first) == [], "right after the kill"
    if point.file_written:
        sinks = fleet.served(TOKEN)
        assert sinks["file"] != before, "the kill came before the file write"
        assert sinks["variable_group"] == before, "the kill came after the variable group write"

    assert fleet.release(point.release) == 1
    fleet.clear_faults()
    wait_until(lambda: not fleet.held(), timeout=5)
    time.sleep(0.2)  # a continued request finishes in the service
    assert fleet.serving_problems(TOKEN, allow_empty=point.first) == [], "after the release"
    created = len(fleet.marked(TOKEN)) - pats_before
    assert created == int(point.created), f"the crashed run created {created} PAT(s)"

    # Recovery: rerun, and once more past the orphan margin; then everything is settled.
    rerun = fleet.rotate()
    assert rerun.code == 0, (rerun.code, rerun.stdout[-3000:], rerun.stderr[-3000:])
    assert rerun.outcomes() == {TOKEN: point.rerun_outcome}
    details = [str(f["detail"]) for f in rerun.document()["findings"]]
    if point.recovery:
        assert any(point.recovery in d for d in details), details
    else:
        assert details == []
    assert fleet.serving_problems(TOKEN) == [], "after the first rerun"
    time.sleep(max(0.0, crashed_at + ORPHAN_MARGIN + 0.2 - time.monotonic()))
    again = fleet.rotate()
    assert again.code == 0, (again.code, again.stdout[-3000:], again.stderr[-3000:])
    assert again.outcomes() == {TOKEN: "not_due"}
    assert fleet.settled_problems(TOKEN) == []

    # No orphan, no lost revocation: every marked PAT but the one served is revoked, and the
    # served one is a PAT patwarden promoted.
    (current,) = fleet.active_marked(TOKEN)
    value = fleet.served(TOKEN)["key_vault"]
    assert value is not None
    assert fleet.authenticates(value)
    audit = fleet.audit()
    promoted = {r["authorization_id"] for r in audit if r["kind"] == "promoted"}
    assert current["authorizationId"] in promoted

    # A previous PAT the rotation revoked is audited exactly once and tagged in Key Vault.
    if previous_id is not None and previous_id != current["authorizationId"]:
        assert fleet.revocation_problems(TOKEN, previous_id, audit) == []
