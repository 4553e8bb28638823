"""One token's world for the convergence model (tests/reliability/test_convergence.py).

The real engine (:class:`~patwarden.app.runtime.Runtime`, its sinks and issuer) against a
dedicated emulator, in process, so that hundreds of examples fit in the suite: each example gets
a token of its own (a Key Vault secret, a variable in a group that also holds a plain variable,
and a file), a clock the model moves (the emulator's business clock follows), and ways to
break the world from outside — revoke a PAT as `pat revoke` would, overwrite, disable or delete
what a sink serves, edit the group by hand, kill a run at a port call or at a request the
emulator holds, inject faults, run two rotations at once. :meth:`desired_state_problems` checks
the desired state from the outside (admin API, the file) and the run's own verdict.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from patwarden.app.runtime import Runtime
from patwarden.config.model import load_config
from patwarden.domain.models import TokenSpec
from patwarden.rotation.converge import grace_ids
from patwarden.rotation.engine import RotationEngine
from patwarden.rotation.fleet import FleetReport
from patwarden.secret import Secret
from patwarden.sinks.key_vault import KeyVaultSink
from patwarden.sinks.variable_group import VariableGroupSink
from tests.reliability.invariants import authenticates
from tests.support import clock
from tests.support.configs import sink_dir, write_config
from tests.support.emulator import RunningEmulator

REVOKE_AFTER = timedelta(hours=1)
# Requests a kill can hit while the emulator holds them: (route, what it is).
HELD_ROUTES = (
    r"^POST /vssps/[^/]+/_apis/tokens/pats",  # the PAT create
    r"^DELETE /vssps/[^/]+/_apis/tokens/pats",  # a revoke
    r"^PUT /secrets/",  # the Key Vault write
    r"^PUT /devops/.*/_apis/distributedtask/variablegroups/",  # the group write
)


class Killed(BaseException):
    """The process died here: nothing in the engine catches it (it is not an Exception)."""


@dataclass
class KillPlan:
    """Kill the run at the ``at``-th port call (before it, or after it acted), or, once
    ``now`` is set, at whatever call returns next (a request the emulator held)."""

    at: int = 0
    after: bool = False
    calls: int = 0
    now: threading.Event = field(default_factory=threading.Event)

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == self.at and not self.after:
            raise Killed
        try:
            result = fn(*args, **kwargs)
        finally:
            if self.now.is_set() or (self.calls == self.at and self.after):
                raise Killed
        return result


class Killable:
    """A port (issuer or sink) whose every call may be the one the process dies at."""

    def __init__(self, inner: Any, plan: KillPlan) -> None:
        self._inner, self._plan = inner, plan

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name == "describe" or not callable(attr):
            return attr
        return lambda *a, **k: self._plan.call(attr, *a, **k)


class ModelClock:
    """The product's clock in the model: the tests' clock plus the jumps the model made."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return clock.now() + self.offset


@dataclass
class ConvergenceWorld:
    """The emulator, a signed-in rotator and one state store shared by every example."""

    emulator: RunningEmulator
    root: Path
    http: httpx.Client
    clock: ModelClock = field(default_factory=ModelClock)
    runtime: Runtime | None = None
    name: str = ""
    specs: list[TokenSpec] = field(default_factory=list)
    group: int = 0
    logged_in: bool = False

    # --- per example -----------------------------------------------------------------------

    def new_token(self) -> None:
        """Start an example: the token's PATs revoked, its state forgotten (its sinks keep what
        they held: a world that is not clean); the clock goes on from where it was."""
        if self.runtime is None:
            self._build()
        else:
            self.forget()

    def _build(self) -> None:
        self.name = "model"
        body = {"project": "infra", "name": "vg-model", "variables": {"OTHER": {"value": "1"}}}
        self.group = int(self.admin("POST", "/variable-groups", json=body).json()["id"])
        entry = {
            "scopes": ["vso.code", "vso.project"],
            "lifetime": "30d",
            "rotate_before": "7d",
            "revoke_after": "1h",
            "sinks": [
                {
                    "kind": "key_vault",
                    "vault_url": self.emulator["key_vault_url"],
                    "secret": f"{self.name}-pat",
                    "identity": "writer",
                },
                {
                    "kind": "variable_group",
                    "project": "infra",
                    "group": self.group,
                    "variable": "PAT",
                    "identity": "writer",
                },
                {"kind": "file", "path": str(self.sink_file)},
            ],
        }
        path = write_config(
            self.emulator,
            self.root,
            tokens={self.name: entry},
            rotation={"orphan_margin": "1h", "lock_timeout": "30s", "concurrency": 1},
        )
        from tests.support.device_codes import login_in_process

        login_in_process(self.emulator, path)
        self.runtime = Runtime(config=load_config(path), clock=self.clock)
        self.specs = self.runtime.specs()  # parsed once: it asks every sink plugin

    @property
    def sink_file(self) -> Path:
        return sink_dir(self.root) / self.name

    def forget(self) -> None:
        """Revoke every PAT of the token (expired ones too) and delete the state store."""
        issuer = self.rt.issuer("rotator")
        for pat_id in self.marked():  # the clock only moves forward: expired ones stay expired
            issuer.revoke(organization=self.spec.organization, authorization_id=pat_id)
        state = self.rt.state_path
        for path in (
            state,
            state.with_name(state.name + "-wal"),
            state.with_name(state.name + "-shm"),
        ):
            path.unlink(missing_ok=True)

    def close(self) -> None:
        if self.runtime is not None:
            self.runtime.close()
            self.runtime = None

    @property
    def rt(self) -> Runtime:
        assert self.runtime is not None
        return self.runtime

    @property
    def spec(self) -> TokenSpec:
        (spec,) = self.specs
        return spec

    # --- time ------------------------------------------------------------------------------

    def jump(self, delta: timedelta) -> None:
        self.clock.offset += delta
        self._move_emulator_clock()

    def _move_emulator_clock(self) -> None:
        offset = (clock.OFFSET + self.clock.offset).total_seconds()
        self.admin("PUT", "/clock", json={"offset_seconds": offset})

    # --- runs ------------------------------------------------------------------------------

    def rotate(self, *, force: bool = False) -> FleetReport:
        return self.rt.rotate(self.specs, force={self.name} if force else set())

    def killed_run(self, plan: KillPlan, *, force: bool) -> bool:
        """Run the engine with every port killable by ``plan``; return whether it was killed."""
        rt = self.rt
        issuer = Killable(rt.issuer("rotator"), plan)
        with rt.open_store() as store:
            engine = RotationEngine(
                issuer=issuer,
                store=store,
                clock=self.clock,
                sinks=lambda spec: [Killable(s, plan) for s in rt.wiring.resolve(spec)],
                lock_timeout=30,
                orphan_margin_seconds=3600,
            )
            try:
                engine.run([self.spec], force={self.name} if force else ())
            except Killed:
                return True
        return False

    def kill_at_held(self, route: str, *, after: bool, release: str) -> bool:
        """Hold the next request on ``route``; kill the (forced) run while it is parked; let
        the request go on (``continue``) or drop it. Return whether the route was reached."""
        rule = self.admin(
            "POST", "/faults", json={"route": route, "kind": "hold", "after": after, "count": 1}
        ).json()
        plan = KillPlan()
        done = threading.Event()

        def run() -> None:
            self.killed_run(plan, force=True)
            done.set()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        held = False
        deadline = time.monotonic() + 20
        while not done.is_set() and time.monotonic() < deadline:
            if self.admin("GET", "/faults/held").json()["held"]:
                held = True
                plan.now.set()
                self.admin("POST", "/faults/release", json={"action": release})
                break
            time.sleep(0.005)
        thread.join(timeout=30)
        self.admin("DELETE", f"/faults/{rule['id']}")
        return held

    def concurrently(self) -> list[FleetReport]:
        """Two runs at once on one state (one of them forced)."""
        reports: list[FleetReport] = []

        def run(force: bool) -> None:
            reports.append(self.rotate(force=force))

        threads = [threading.Thread(target=run, args=(f,)) for f in (True, False)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        return reports

    @contextmanager
    def faults(self, route: str, *, after: bool) -> Iterator[None]:
        body = {"route": route, "kind": "status", "status": 501, "after": after, "count": 1}
        rule = self.admin("POST", "/faults", json=body).json()
        try:
            yield
        finally:
            self.admin("DELETE", f"/faults/{rule['id']}")

    # --- the world outside patwarden -------------------------------------------------------

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, self.emulator["admin_url"] + path, **kwargs)
        response.raise_for_status()
        return response

    def _sink(self, kind: type) -> Any:
        return next(s for s in self.rt.wiring.resolve(self.spec) if isinstance(s, kind))

    def current_id(self) -> str | None:
        with self.rt.open_store() as store:
            state = store.load_token(self.name)
        return None if state is None or state.current is None else state.current.authorization_id

    def previous_ids(self) -> list[str]:
        with self.rt.open_store() as store:
            state = store.load_token(self.name)
            ops = store.operations(self.name, unfinished=True)
        return list(grace_ids(state, ops, self.clock.now()))

    def revoke_externally(self, authorization_id: str) -> None:
        """What `pat revoke`, an admin or Azure DevOps' leak detection does."""
        self.rt.issuer("rotator").revoke(
            organization=self.spec.organization, authorization_id=authorization_id
        )

    def overwrite_key_vault(self, *, disable: bool) -> None:
        sink = self._sink(KeyVaultSink)
        if disable:
            latest = sink.client.get_secret(sink.spec.secret)
            sink.client.update_secret(sink.spec.secret, latest.version, enabled=False)
        else:
            sink.client.set_secret(sink.spec.secret, Secret(f"foreign-{uuid.uuid4().hex}"))

    def edit_group(self, *, delete_pat: bool, foreign_pat: bool) -> None:
        """Edit the group by hand: change the plain variable; delete or replace the PAT."""
        sink = self._sink(VariableGroupSink)
        api = sink.client.variable_groups
        from patwarden.azdo.variable_groups import Variable, secret_update

        group = api.get(org=sink.organization, project="infra", group_id=self.group)
        update = secret_update(group, variable="PAT", value=Secret(f"foreign-{uuid.uuid4().hex}"))
        variables = dict(update.variables)
        variables["OTHER"] = Variable(value=uuid.uuid4().hex[:6], is_secret=False)
        if delete_pat:
            variables.pop("PAT", None)
            variables.pop("PAT_PATWARDEN", None)
        elif foreign_pat:
            variables.pop("PAT_PATWARDEN", None)
        else:  # only the plain variable changes: the PAT must be left alone
            variables["PAT"] = Variable(value=None, is_secret=True)
        import dataclasses
        from types import MappingProxyType

        api.put(
            org=sink.organization,
            update=dataclasses.replace(update, variables=MappingProxyType(variables)),
        )

    def overwrite_file(self, *, delete: bool) -> None:
        path = self.sink_file
        if delete:
            path.unlink(missing_ok=True)
        else:  # as an editor or a deploy tool does: a new file renamed over the old one
            # (an in-place rewrite keeps the inode the file sink identifies its version by)
            other = path.with_name(path.name + ".new")
            other.write_text(f"foreign-{uuid.uuid4().hex}")
            other.chmod(0o600)
            other.replace(path)

    # --- the desired state, seen from outside ----------------------------------------------

    def served(self) -> dict[str, str | None]:
        values: dict[str, str | None] = {}
        answer = self.http.get(f"{self.emulator['admin_url']}/key-vault/secrets/{self.name}-pat")
        latest = answer.json()["versions"][-1] if answer.status_code == 200 else None
        values["key_vault"] = latest["value"] if latest and latest["enabled"] else None
        group = self.admin("GET", f"/variable-groups/{self.group}/secrets").json()["variables"]
        values["variable_group"] = group.get("PAT", {}).get("value")
        path = self.sink_file
        values["file"] = path.read_text() if path.exists() else None
        return values

    def marked(self) -> list[str]:
        """The active PATs carrying the token's marker, as Azure DevOps lists them (the PAT
        API's own "active" filter: neither revoked nor expired)."""
        listed = self.rt.issuer("rotator").list_marked(organization=self.spec.organization)
        prefix = f"patwarden:{self.name}:"
        return [p.authorization_id for p in listed if p.display_name.startswith(prefix)]

    def desired_state_problems(self, report: FleetReport) -> list[str]:
        """What differs from the desired state after a clean run (empty: converged)."""
        problems = [f"{o.token_name}: {o.kind} {o.reason} {o.problems}" for o in report.failed]
        served = self.served()
        values = set(served.values())
        if None in values or len(values) != 1:
            empty = sorted(k for k, v in served.items() if v is None)
            problems.append(f"the sinks do not serve one PAT: {empty} empty, {len(values)} values")
        elif not authenticates(self.http, self.emulator, next(iter(values)) or ""):
            problems.append("the sinks serve a PAT Azure DevOps refuses")
        current = self.current_id()
        active = set(self.marked())
        if current not in active:
            problems.append(f"the current PAT {current} is not active")
        extra = active - {current} - set(self.previous_ids())
        if extra:
            problems.append(
                f"active besides the current and the previous in grace: {sorted(extra)}"
            )
        return problems
