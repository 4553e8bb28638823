"""The indexed listing of marked PATs: each display name parsed once per run, a token's PATs
found by index, so a run over N tokens does O(N) marker work, not O(N²)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from patwarden.domain import marker as marker_module
from patwarden.domain.marker import format_marker
from patwarden.domain.models import IssuedPat
from patwarden.rotation import converge, listing, reconcile
from patwarden.rotation.engine import RotationEngine
from patwarden.rotation.fleet import SharedListingIssuer
from patwarden.rotation.listing import MarkedListing, indexed, marked_for
from patwarden.rotation.outcomes import OutcomeKind
from patwarden.state.sqlite import SqliteStateStore
from tests.rotation.fakes import T0, FakeClock, FakeIssuer, FakeSink, spec


def pat(pat_id: str, display_name: str) -> IssuedPat:
    return IssuedPat(
        authorization_id=pat_id,
        display_name=display_name,
        valid_from=T0,
        valid_to=T0 + timedelta(days=30),
    )


def op_id(n: int) -> str:
    return f"{n:032x}"


MIXED = [
    pat("a1", format_marker(token_name="alpha", operation_id=op_id(1))),
    pat("x", "someone's own PAT"),
    pat("b1", format_marker(token_name="beta", operation_id=op_id(2))),
    pat("a2", format_marker(token_name="alpha", operation_id=op_id(3))),
    pat("bad", "patwarden:alpha:not-an-operation-id"),
]


def linear(token_name: str, pats: list[IssuedPat]) -> list[str]:
    mine = []
    for p in pats:
        m = marker_module.parse_marker(p.display_name)
        if m is not None and m.token_name == token_name:
            mine.append(p.authorization_id)
    return mine


@pytest.mark.parametrize("name", ["alpha", "beta", "gamma"])
def test_the_index_finds_what_a_scan_finds_in_listed_order(name: str) -> None:
    listed = MarkedListing(MIXED)
    assert list(listed) == MIXED  # still the whole listing, in order, for every other consumer
    assert [p.authorization_id for p in marked_for(name, listed)] == linear(name, MIXED)
    assert [p.authorization_id for p in marked_for(name, list(MIXED))] == linear(name, MIXED)
    assert [p.authorization_id for p in listed.for_token(name)] == linear(name, MIXED)


def test_a_changed_listing_is_indexed_again() -> None:
    listed = MarkedListing(MIXED[:2])
    assert marked_for("beta", listed) == []
    listed.append(MIXED[2])
    assert [p.authorization_id for p in marked_for("beta", listed)] == ["b1"]


def test_indexed_keeps_a_listing_and_indexes_anything_else() -> None:
    listed = MarkedListing(MIXED)
    assert indexed(listed) is listed
    made = indexed(iter(MIXED))
    assert isinstance(made, MarkedListing)
    assert list(made) == MIXED


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every marker the rotation engine parses (the display names), in order."""
    calls: list[str] = []
    real: Callable[[str | None], Any] = marker_module.parse_marker

    def counting(display_name: str | None) -> Any:
        calls.append(display_name or "")
        return real(display_name)

    for module in (listing, converge, reconcile):
        monkeypatch.setattr(module, "parse_marker", counting)
    return calls


def test_lookups_in_a_listing_parse_nothing_again(parses: list[str]) -> None:
    names = [f"token-{i:03d}" for i in range(200)]
    listed = MarkedListing(
        pat(f"p{i}", format_marker(token_name=n, operation_id=op_id(i)))
        for i, n in enumerate(names)
    )
    assert len(parses) == 200  # built once: one parse per listed PAT
    for i, name in enumerate(names):
        assert [p.authorization_id for p in marked_for(name, listed)] == [f"p{i}"]
        assert converge.active_ids(name, listed) == {f"p{i}"}
    assert len(parses) == 200  # 400 lookups later, nothing parsed again


def test_the_shared_listing_is_indexed_once_and_shared() -> None:
    issuer = FakeIssuer(FakeClock())
    shared = SharedListingIssuer(issuer)
    first = shared.list_marked(organization="contoso")
    assert isinstance(first, MarkedListing)
    assert shared.list_marked(organization="contoso") is first
    assert converge.list_marked(shared, {"contoso"})["contoso"] is first


def test_a_nothing_due_fleet_run_parses_each_listed_marker_a_bounded_number_of_times(
    tmp_path: Path, parses: list[str]
) -> None:
    """N tokens, one org: the second run (nothing due) parses O(N) markers, not N * N."""
    clock = FakeClock()
    issuer = FakeIssuer(clock)
    tokens = [spec(f"token-{i:03d}") for i in range(60)]
    sinks = {t.name: [FakeSink(f"kv-{t.name}")] for t in tokens}
    with SqliteStateStore(path=tmp_path / "state.db", now=clock.now) as store:

        def engine(shared: SharedListingIssuer) -> RotationEngine:
            return RotationEngine(
                issuer=shared, store=store, clock=clock, sinks=lambda s: sinks[s.name]
            )

        first = engine(SharedListingIssuer(issuer))
        rotated = [first.run([t]).outcomes[0].kind for t in tokens]
        assert rotated == [OutcomeKind.ROTATED] * len(tokens)
        clock.advance(timedelta(days=1, hours=2))  # past every grace period and orphan margin
        settle = engine(SharedListingIssuer(issuer))
        for t in tokens:
            settle.run([t])
        parses.clear()
        again = engine(SharedListingIssuer(issuer))
        kinds = [again.run([t]).outcomes[0].kind for t in tokens]
    assert kinds == [OutcomeKind.NOT_DUE] * len(tokens)
    # The listing (one PAT per token) is parsed once when indexed; each token then looks at its
    # own PAT a few times. A scan per token would be 60 * 60 = 3,600 parses or more.
    assert len(parses) <= 5 * len(tokens), len(parses)
