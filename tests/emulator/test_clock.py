"""The emulator's business clock: `--now` and `/_admin/clock` move Azure DevOps' "now"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import RunningEmulator, start_emulator, stop_emulator
from tests.emulator.devops_support import Ado
from tests.support import clock
from tests.support.pats import basic


def _clock(emulator: RunningEmulator) -> datetime:
    return datetime.fromisoformat(emulator.admin("GET", "/clock").json()["now"])


def test_the_clock_follows_the_tests_clock(emulator: RunningEmulator) -> None:
    assert abs(_clock(emulator) - clock.now()) < timedelta(seconds=30)


def test_moving_the_clock_moves_pat_validity_and_survives_reset(
    emulator: RunningEmulator, ado: Ado
) -> None:
    target = datetime(2031, 3, 1, 12, tzinfo=UTC)
    lasting = ado.admin_pat(validFrom="2030-01-01T00:00:00Z", validTo="2031-04-01T00:00:00Z")
    ending = ado.admin_pat(validFrom="2030-01-01T00:00:00Z", validTo="2031-02-01T00:00:00Z")
    url = ado.devops("_apis/connectionData")
    assert ado.client.get(url, headers=basic(ending["token"])).status_code == 200
    try:
        emulator.admin("PUT", "/clock", json={"now": "2031-03-01T12:00:00Z"})
        emulator.admin("POST", "/reset")
        assert abs(_clock(emulator) - target) < timedelta(seconds=30)
        lasting = ado.admin_pat(validTo="2031-04-01T00:00:00Z")
        ending = ado.admin_pat(validFrom="2030-01-01T00:00:00Z", validTo="2031-02-01T00:00:00Z")
        valid_from = datetime.fromisoformat(lasting["patToken"]["validFrom"])
        assert abs(valid_from.replace(tzinfo=UTC) - target) < timedelta(seconds=30)
        assert ado.client.get(url, headers=basic(lasting["token"])).status_code == 200
        expired = ado.client.get(url, headers=basic(ending["token"]))
        assert expired.status_code == 401
        assert "has expired" in expired.json()["message"]
    finally:
        offset = clock.OFFSET.total_seconds()
        emulator.admin("PUT", "/clock", json={"offset_seconds": offset})
    assert abs(_clock(emulator) - clock.now()) < timedelta(seconds=30)


@pytest.mark.parametrize("body", [{}, {"now": "not a date"}, {"offset_seconds": "soon"}])
def test_a_bad_clock_request_is_a_400_that_names_the_fields(
    emulator: RunningEmulator, body: dict[str, object]
) -> None:
    before = _clock(emulator)
    with pytest.raises(httpx.HTTPStatusError) as caught:
        emulator.admin("PUT", "/clock", json=body)
    assert caught.value.response.status_code == 400
    assert "offset_seconds" in caught.value.response.json()["message"]
    assert abs(_clock(emulator) - before) < timedelta(seconds=30)


@pytest.mark.slow
def test_now_option_starts_the_clock_at_a_date(tmp_path: Path) -> None:
    running = start_emulator(tmp_path, "--now", "2030-06-01")
    try:
        if not clock.is_pinned():  # start_emulator moves a pinned session's clock afterwards
            moved = _clock(running)
            assert datetime(2030, 6, 1, tzinfo=UTC) <= moved < datetime(2030, 6, 2, tzinfo=UTC)
        assert running.admin("GET", "/clock").json()["offset_seconds"] != 0
    finally:
        stop_emulator(running)
