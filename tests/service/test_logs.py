"""The service's log lines: JSON objects with the event's fields, or human lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from patwarden.service import logs


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.getLogger("patwarden").setLevel(logging.NOTSET)


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_carry_the_fields() -> None:
    stream = io.StringIO()
    logs.configure("json", stream=stream)
    logs.log_event(
        "rotated", "flux-git: due", token="flux-git", operation_id="op1", outcome="rotated"
    )
    (line,) = stream.getvalue().splitlines()
    document = json.loads(line)
    assert document["event"] == "rotated"
    assert document["token"] == "flux-git"
    assert document["operation_id"] == "op1"
    assert document["outcome"] == "rotated"
    assert document["level"] == "info"
    assert document["message"] == "flux-git: due"


@pytest.mark.usefixtures("restore_logging")
def test_human_lines_read_as_a_sentence() -> None:
    stream = io.StringIO()
    logs.configure("human", stream=stream)
    logs.log_event("repair", "rotating flux-git now", token="flux-git")
    line = stream.getvalue().strip()
    assert " INFO    repair: rotating flux-git now  [token=flux-git]" in line
