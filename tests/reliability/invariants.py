"""The checks both reliability worlds (``world.World``, ``crash_support.Fleet``) share.

What a CLI run did (:class:`Run`), polling (:func:`wait_until`), and the invariants read from the
outside: whether Azure DevOps accepts a PAT, which marked PATs exist, and the problems found in
what the sinks serve (invariant 1) and after settling (invariant 2).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from tests.conftest import RunningEmulator

T = TypeVar("T")


@dataclass(frozen=True)
class Run:
    """What one CLI process did."""

    code: int
    stdout: str
    stderr: str

    def document(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.stdout)
        return data

    def outcomes(self) -> dict[str, str]:
        """Token name → outcome of a ``rotate -o json`` run."""
        return {t["token"]: t["outcome"] for t in self.document()["tokens"]}


def rotated_once_problems(runs: Sequence[Run], tokens: Sequence[str]) -> list[str]:
    """What is wrong with concurrent ``rotate -o json`` *runs* that should, between them, have
    rotated each of *tokens* exactly once (each run exits 0; every other outcome is
    ``not_due`` or ``skipped``)."""
    problems = [f"a run exited {run.code}: {run.stderr[-2000:]}" for run in runs if run.code]
    if problems:
        return problems
    rotated: dict[str, int] = {}
    for run in runs:
        for token, outcome in run.outcomes().items():
            if outcome == "rotated":
                rotated[token] = rotated.get(token, 0) + 1
            elif outcome not in ("not_due", "skipped"):
                problems.append(f"{token}: {outcome}")
    problems += [
        f"{token} rotated {rotated.get(token, 0)} times"
        for token in tokens
        if rotated.get(token) != 1
    ]
    problems += [f"{token} rotated but not asked for" for token in rotated if token not in tokens]
    return problems


def wait_until(predicate: Callable[[], T], *, timeout: float, interval: float = 0.02) -> T:
    """Poll *predicate* until it returns something truthy; return it (or the last value)."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    return value


def authenticates(http: httpx.Client, emulator: RunningEmulator, pat: str) -> bool:
    """Whether the emulated Azure DevOps accepts *pat* (``connectionData`` names its user).

    Never call it while a hold or fault rule on the verification route is still pending.
    """
    basic = base64.b64encode(b":" + pat.encode()).decode()
    org = emulator["organization"]
    answer = http.get(
        f"{emulator['azure_devops_url']}/{org}/_apis/connectionData",
        headers={"Authorization": f"Basic {basic}", "X-TFS-FedAuthRedirect": "Suppress"},
    )
    if answer.status_code != 200 or "json" not in answer.headers.get("content-type", ""):
        return False
    return bool(answer.json().get("authenticatedUser", {}).get("id"))


def marked_pats(emulator: RunningEmulator, token: str) -> list[dict[str, Any]]:
    """Every PAT of the rotator (active or not) whose display name carries *token*'s marker."""
    user = emulator["identities"]["rotator"]["username"]
    pats = emulator.admin("GET", "/pats", params={"username": user}).json()["value"]
    prefix = f"patwarden:{token}:"
    return [pat for pat in pats if str(pat["displayName"]).startswith(prefix)]


def serving_problems(
    token: str,
    served: Mapping[str, str | None],
    accepts: Callable[[str], bool],
    *,
    allow_empty: bool = False,
) -> list[str]:
    """Invariant 1: every sink holds a PAT that authenticates (empty list when it holds)."""
    problems = []
    checked: dict[str, bool] = {}
    for sink, value in served.items():
        if value is None:
            if not allow_empty:
                problems.append(f"{token}: {sink} serves nothing")
            continue
        if value not in checked:
            checked[value] = accepts(value)
        if not checked[value]:
            problems.append(f"{token}: {sink} serves a PAT Azure DevOps refuses")
    return problems


def settled_problems(
    token: str,
    served: Mapping[str, str | None],
    active: list[dict[str, Any]],
    accepts: Callable[[str], bool],
) -> list[str]:
    """Invariants 1 and 2: the sinks serve one working PAT, the only active marked one."""
    problems = serving_problems(token, served, accepts)
    if len(active) != 1:
        names = ", ".join(str(pat["displayName"]) for pat in active)
        problems.append(f"{token}: {len(active)} active patwarden PATs ({names})")
    values = {value for value in served.values() if value}
    if len(values) != 1:
        problems.append(f"{token}: the sinks serve {len(values)} different PATs")
    return problems


def revocation_problems(
    pat_id: str,
    *,
    revoked: bool,
    audit: Sequence[Mapping[str, Any]],
    versions: Sequence[Mapping[str, Any]],
) -> list[str]:
    """Problems with the revocation of a rotation's previous PAT *pat_id*: it must be revoked,
    audited ``revoked_previous`` exactly once, and every Key Vault version holding it (per the
    version's ``authorizationId`` tag) tagged ``revokedAt``."""
    problems = []
    if not revoked:
        problems.append(f"the previous PAT {pat_id} is still active")
    records = [
        r for r in audit if r["kind"] == "revoked_previous" and r["authorization_id"] == pat_id
    ]
    if len(records) != 1:
        problems.append(f"the revocation of {pat_id} is audited {len(records)} times, not once")
    holding = [v for v in versions if (v.get("tags") or {}).get("authorizationId") == pat_id]
    if not holding:
        problems.append(f"no Key Vault version names {pat_id}")
    untagged = [v for v in holding if "revokedAt" not in (v.get("tags") or {})]
    if untagged:
        problems.append(f"{len(untagged)} Key Vault version(s) of {pat_id} lack revokedAt")
    return problems
