"""Four real ``rotate`` processes on one config and one state file rotate each due token once.

The issuer and the sinks are shared between processes through a small SQLite file (fakes that
work across processes); the state store is the real one.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from patwarden.domain.marker import parse_marker
from patwarden.domain.models import CreatedPat, IssuedPat
from patwarden.errors import AzureDevOpsError
from patwarden.rotation.engine import RotationEngine
from patwarden.rotation.ports import SinkVersion, SinkWriteMeta
from patwarden.secret import Secret
from patwarden.state.sqlite import SqliteStateStore
from tests.rotation.fakes import T0, FakeClock, spec

TOKENS = [f"token-{n}" for n in range(6)]


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def _init_world(path: str) -> None:
    conn = _connect(path)
    conn.execute(
        "CREATE TABLE pats (id TEXT PRIMARY KEY, name TEXT, valid_from TEXT, valid_to TEXT,"
        " value TEXT, revoked INTEGER DEFAULT 0)"
    )
    conn.execute("CREATE TABLE versions (sink TEXT, ref TEXT, value TEXT, pat_id TEXT)")
    conn.execute("CREATE TABLE current (sink TEXT PRIMARY KEY, ref TEXT)")
    conn.close()


class SharedIssuer:
    """A PAT API whose PATs live in a SQLite file every process sees."""

    def __init__(self, path: str) -> None:
        self.conn = _connect(path)

    def create(
        self, *, organization: str, display_name: str, scopes: Sequence[str], valid_to: datetime
    ) -> CreatedPat:
        pat = IssuedPat(
            authorization_id=str(uuid.uuid4()),
            display_name=display_name,
            valid_from=T0,
            valid_to=valid_to,
        )
        value = uuid.uuid4().hex * 2
        self.conn.execute(
            "INSERT INTO pats (id, name, valid_from, valid_to, value) VALUES (?, ?, ?, ?, ?)",
            (pat.authorization_id, display_name, T0.isoformat(), valid_to.isoformat(), value),
        )
        return CreatedPat(pat=pat, secret=Secret(value))

    def get(self, *, organization: str, authorization_id: str) -> IssuedPat | None:
        raise NotImplementedError

    def list_marked(self, *, organization: str) -> Sequence[IssuedPat]:
        rows = self.conn.execute(
            "SELECT id, name, valid_from, valid_to FROM pats WHERE revoked = 0"
        )
        return [
            IssuedPat(
                authorization_id=i,
                display_name=n,
                valid_from=datetime.fromisoformat(f),
                valid_to=datetime.fromisoformat(t),
            )
            for i, n, f, t in rows
            if parse_marker(n)
        ]

    def revoke(self, *, organization: str, authorization_id: str) -> None:
        self.conn.execute("UPDATE pats SET revoked = 1 WHERE id = ?", (authorization_id,))

    def verify(self, *, organization: str, secret: Secret, scopes: Sequence[str]) -> None:
        row = self.conn.execute(
            "SELECT 1 FROM pats WHERE value = ? AND revoked = 0", (secret.reveal(),)
        ).fetchone()
        if row is None:
            raise AzureDevOpsError("rejected")


class SharedSink:
    """A versioned sink stored in the shared SQLite file."""

    def __init__(self, path: str, name: str) -> None:
        self.conn = _connect(path)
        self.name = name

    def write(self, secret: Secret, meta: SinkWriteMeta) -> SinkVersion:
        ref = uuid.uuid4().hex
        self.conn.execute(
            "INSERT INTO versions VALUES (?, ?, ?, ?)",
            (self.name, ref, secret.reveal(), meta.authorization_id),
        )
        self.conn.execute("INSERT OR REPLACE INTO current VALUES (?, ?)", (self.name, ref))
        return SinkVersion(ref=ref, authorization_id=meta.authorization_id)

    def _current(self) -> tuple[str, str, str] | None:
        return self.conn.execute(  # type: ignore[no-any-return]
            "SELECT v.ref, v.value, v.pat_id FROM current c JOIN versions v"
            " ON v.sink = c.sink AND v.ref = c.ref WHERE c.sink = ?",
            (self.name,),
        ).fetchone()

    def read_back(self) -> Secret | None:
        row = self._current()
        return None if row is None else Secret(row[1])

    def describe(self) -> str:
        return f"shared {self.name}"

    def restore(self, previous: SinkVersion | None) -> bool:
        if previous is None:
            self.conn.execute("DELETE FROM current WHERE sink = ?", (self.name,))
        else:
            self.conn.execute(
                "INSERT OR REPLACE INTO current VALUES (?, ?)", (self.name, previous.ref)
            )
        return True

    def current_version(self) -> SinkVersion | None:
        row = self._current()
        return None if row is None else SinkVersion(ref=row[0], authorization_id=row[2])


def _rotate_process(world: str, state: str, out: multiprocessing.Queue[tuple[str, str]]) -> None:
    """One `patwarden rotate` process: its own connections, engine and clock."""
    clock = FakeClock(T0)
    store = SqliteStateStore(path=state, now=clock.now)
    issuer = SharedIssuer(world)
    sinks = {
        name: [SharedSink(world, f"{name}-kv"), SharedSink(world, f"{name}-file")]
        for name in TOKENS
    }
    engine = RotationEngine(
        issuer=issuer,
        store=store,
        clock=clock,
        sinks=lambda s: sinks[s.name],
        lock_timeout=60,
    )
    report = engine.run([spec(name) for name in TOKENS])
    for outcome in report.outcomes:
        out.put((outcome.token_name, outcome.kind.value))
    store.close()


def test_four_concurrent_runs_rotate_every_due_token_exactly_once(tmp_path: Path) -> None:
    world, state = str(tmp_path / "world.db"), str(tmp_path / "state.db")
    _init_world(world)
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[tuple[str, str]] = ctx.Queue()
    runs = [ctx.Process(target=_rotate_process, args=(world, state, out)) for _ in range(4)]
    for run in runs:
        run.start()
    results = [out.get(timeout=120) for _ in range(4 * len(TOKENS))]
    for run in runs:
        run.join(timeout=60)
        assert run.exitcode == 0

    rotated = sorted(token for token, kind in results if kind == "rotated")
    assert rotated == sorted(TOKENS), results
    assert {kind for _, kind in results} <= {"rotated", "not_due"}
    conn = _connect(world)
    names = [parse_marker(n) for (n,) in conn.execute("SELECT name FROM pats")]
    assert sorted(m.token_name for m in names if m) == sorted(TOKENS), "one PAT per token"
    store = SqliteStateStore(path=state, now=lambda: T0 + timedelta(seconds=1))
    for name in TOKENS:
        token_state = store.load_token(name)
        assert token_state is not None
        assert token_state.current is not None
        served = {r.authorization_id for r in token_state.sinks}
        assert served == {token_state.current.authorization_id}
    store.close()
