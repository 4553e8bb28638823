"""A rotation engine wired to fakes and a real SQLite state file, plus the safety invariants."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from patwarden.domain.models import TokenSpec
from patwarden.rotation.engine import RotationEngine
from patwarden.rotation.outcomes import OutcomeKind, RunReport
from patwarden.state.sqlite import SqliteStateStore
from tests.rotation.fakes import FakeClock, FakeIssuer, FakeSink, spec


@dataclass
class Harness:
    """One token's world: issuer, sinks, state file; ``run`` makes a fresh engine each time."""

    path: Path
    clock: FakeClock = field(default_factory=FakeClock)
    sinks: list[FakeSink] = field(default_factory=list)
    token: TokenSpec = field(default_factory=spec)
    margin: float = 3600.0
    issuer: FakeIssuer = field(init=False)
    store: SqliteStateStore = field(init=False)

    def __post_init__(self) -> None:
        self.issuer = FakeIssuer(self.clock)
        self.store = SqliteStateStore(path=self.path, now=self.clock.now)
        if not self.sinks:
            self.sinks = [FakeSink("kv"), FakeSink("group")]

    def engine(self, **kwargs: object) -> RotationEngine:
        return RotationEngine(
            issuer=self.issuer,
            store=self.store,
            clock=self.clock,
            sinks=lambda _spec: self.sinks,
            orphan_margin_seconds=self.margin,
            **kwargs,  # type: ignore[arg-type]
        )

    def run(self, **kwargs: object) -> RunReport:
        return self.engine().run([self.token], **kwargs)  # type: ignore[arg-type]

    def current_id(self) -> str | None:
        state = self.store.load_token(self.token.name)
        return None if state is None or state.current is None else state.current.authorization_id

    def served_ids(self) -> list[str | None]:
        return [self.issuer.id_of(s.value) if s.value else None for s in self.sinks]

    def advance(self, delta: timedelta) -> None:
        self.clock.advance(delta)

    def check_invariants(self) -> None:
        """The safety rules that must hold after any run, however it ended."""
        for sink in self.sinks:
            if sink.value is not None:
                # Never revoke a PAT a sink still serves.
                assert self.issuer.id_of(sink.value) is not None, (
                    f"{sink.name} serves a revoked PAT"
                )
        current = self.current_id()
        if current is not None:
            assert current in self.issuer.active(), "the current PAT was revoked"
        unfinished = [
            op
            for op in self.store.operations(self.token.name, unfinished=True)
            if not op.step.is_tail  # the rotation stands; only its revocation tail is left
        ]
        assert len(unfinished) <= 1, "more than one rotation in flight for one token"

    def settle(self) -> None:
        """Run until nothing is in flight, then past every grace period and margin."""
        self.run()
        self.check_invariants()
        self.advance(self.token.revoke_after + timedelta(seconds=self.margin + 1))
        self.run()
        self.check_invariants()


def rotate_once(world: Harness) -> str:
    """Run once, check that it rotated, and return the new current PAT's id."""
    report = world.run()
    assert report.outcomes[0].kind is OutcomeKind.ROTATED, report.outcomes[0]
    current = world.current_id()
    assert current is not None
    return current
