"""Locks for read-modify-write sinks (found by tests/reliability: tokens sharing a variable group
that rotated at once lost each other's variable)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from patwarden.sinks.errors import SinkUnavailable
from patwarden.sinks.locks import process_lock, shared_lock


def test_a_shared_lock_excludes_other_holders_and_names_itself_when_it_times_out(
    tmp_path: Path,
) -> None:
    caught: list[Exception] = []

    def contender() -> None:
        try:
            with shared_lock(
                tmp_path / "locks", "variable group contoso/infra/gitops", timeout=0.2
            ):
                pass
        except SinkUnavailable as err:
            caught.append(err)

    with shared_lock(tmp_path / "locks", "variable group contoso/infra/gitops"):
        thread = threading.Thread(target=contender)
        thread.start()
        thread.join()
    assert len(caught) == 1
    assert "variable group contoso/infra/gitops" in str(caught[0])
    with shared_lock(tmp_path / "locks", "variable group contoso/infra/gitops", timeout=0.2):
        pass  # released: free again


def test_different_names_do_not_wait_for_each_other(tmp_path: Path) -> None:
    with (
        shared_lock(tmp_path, "variable group a", timeout=0.2),
        shared_lock(tmp_path, "variable group b", timeout=0.2),
    ):
        pass


def test_the_process_lock_serialises_threads() -> None:
    inside: list[int] = []
    overlaps: list[int] = []

    def work() -> None:
        for _ in range(200):
            with process_lock("variable group x"):
                inside.append(1)
                if len(inside) > 1:
                    overlaps.append(1)
                inside.pop()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []


@pytest.mark.parametrize("name", ["x", "y"])
def test_lock_files_are_private(tmp_path: Path, name: str) -> None:
    with shared_lock(tmp_path / "locks", name):
        pass
    assert (tmp_path / "locks").stat().st_mode & 0o077 == 0
