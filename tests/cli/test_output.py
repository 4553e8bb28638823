"""Shared command output: format choice, JSON conversion, tables that never interpret markup."""

from __future__ import annotations

import enum
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from patwarden.cli.output import (
    Column,
    dumps,
    emit,
    format_cell,
    output_option,
    render_fields,
    render_table,
    resolve_format,
    to_jsonable,
)
from patwarden.secret import Secret


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Colour(enum.StrEnum):
    RED = "red"


@dataclass(frozen=True)
class Thing:
    name: str
    when: datetime
    tags: tuple[str, ...]


AT = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("choice", "stream", "expected"),
    [
        (None, io.StringIO(), "json"),
        (None, Terminal(), "table"),
        ("table", io.StringIO(), "table"),
        ("json", Terminal(), "json"),
    ],
)
def test_format_defaults_to_table_only_on_a_terminal(
    choice: str | None, stream: io.StringIO, expected: str
) -> None:
    assert resolve_format(choice, stream=stream) == expected


def test_a_closed_stream_is_not_a_terminal() -> None:
    stream = io.StringIO()
    stream.close()  # isatty() now raises ValueError
    assert resolve_format(None, stream=stream) == "json"


def test_to_jsonable_converts_domain_values() -> None:
    plus_two = timezone(timedelta(hours=2))
    value = {
        "thing": Thing(name="a", when=AT.astimezone(plus_two), tags=("x", "y")),
        "colour": Colour.RED,
        "path": Path("/etc/patwarden/x"),
        "ids": {"b", "a"},
        "wait": timedelta(minutes=1),
        "none": None,
    }
    assert to_jsonable(value) == {
        "thing": {"name": "a", "when": "2026-06-01T09:30:00+00:00", "tags": ["x", "y"]},
        "colour": "red",
        "path": "/etc/patwarden/x",
        "ids": ["a", "b"],
        "wait": 60.0,
        "none": None,
    }


@pytest.mark.parametrize("value", [Secret("s3cret"), {"nested": [Secret("s3cret")]}])
def test_a_secret_never_becomes_json(value: object) -> None:
    with pytest.raises(TypeError, match="Secret") as caught:
        dumps(value)
    assert "s3cret" not in str(caught.value)


def test_unknown_types_are_refused() -> None:
    with pytest.raises(TypeError, match="object"):
        to_jsonable(object())


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        (True, "yes"),
        (False, "no"),
        (AT, "2026-06-01 09:30 UTC"),
        (2.345, "2.3"),
        (("vso.code", "vso.build"), "vso.code, vso.build"),
        ((), "-"),
        (Colour.RED, "red"),
    ],
)
def test_cells(value: object, text: str) -> None:
    assert format_cell(value) == text


def test_a_secret_never_becomes_a_cell() -> None:
    with pytest.raises(TypeError):
        format_cell(Secret("s3cret"))


def test_table_prints_every_value_in_full_and_never_interprets_markup() -> None:
    out = io.StringIO()
    long_id = "3e6d2031-2fd3-4430-9656-b95435f41ec0"
    render_table(
        [{"id": long_id, "name": "[bold]x[/bold]", "expires": AT}, {"id": "2", "name": None}],
        columns=(Column(key="id", header="id"), Column(key="name", header="name"),
                 Column(key="expires", header="expires")),
        stream=out,
    )  # fmt: skip
    text = out.getvalue()
    assert long_id in text
    assert "[bold]x[/bold]" in text
    assert "2026-06-01 09:30 UTC" in text
    assert "\x1b[" not in text  # no colour codes outside a terminal
    lines = text.splitlines()
    assert any("id" in line and "name" in line and "expires" in line for line in lines[:3])


def test_table_cells_show_control_characters_as_escapes() -> None:
    # The audit table, status and pat list print PAT display names: issue 11, item 5.
    out = io.StringIO()
    hostile = "ci\x1b[2J\x1b]52;c;eA==\x07\u202e"
    render_table(
        [{"name": hostile, "detail": "line one\nline two"}],
        columns=(Column(key="name", header="name"), Column(key="detail", header="detail")),
        stream=out,
    )
    text = out.getvalue()
    assert "\x1b" not in text
    assert "\x07" not in text
    assert "ci\\x1b[2J\\x1b]52;c;eA==\\x07\\u202e" in text
    assert "line two" in text.splitlines()[-2]  # our own multi-line cells still wrap


def test_empty_table_prints_the_message() -> None:
    out = io.StringIO()
    render_table([], columns=(Column(key="id", header="id"),), empty="No PATs.", stream=out)
    assert out.getvalue() == "No PATs.\n"


def test_fields_are_a_two_column_table() -> None:
    out = io.StringIO()
    render_fields([("name", "x"), ("scopes", ("a", "b"))], stream=out)
    text = out.getvalue()
    assert "name" in text
    assert "a, b" in text


@output_option()
@click.command()
def sample(output: str | None) -> None:
    emit(
        [{"n": 1}],
        columns=(Column(key="n", header="number"),),
        output=output,
        document={"rows": [{"n": 1}]} if output == "json" else None,
    )


def test_option_in_a_command() -> None:
    runner = CliRunner()
    piped = runner.invoke(sample, [])  # CliRunner's stdout is not a terminal
    assert piped.exit_code == 0
    assert json.loads(piped.output) == [{"n": 1}]
    explicit = runner.invoke(sample, ["-o", "json"])
    assert json.loads(explicit.output) == {"rows": [{"n": 1}]}
    table = runner.invoke(sample, ["--output", "table"])
    assert "number" in table.output
    assert "1" in table.output
    bad = runner.invoke(sample, ["-o", "yaml"])
    assert bad.exit_code == 2
    assert "'yaml' is not one of 'table', 'json'" in bad.output
