"""Output shared by every command: ``--output table|json``, rich tables, JSON documents.

Without ``--output`` a command prints a table when stdout is a terminal and JSON otherwise, so
``patwarden pat list | jq`` works without a flag and people still get a readable table. Tables go
through rich (imported on first use, never at module level, so ``patwarden --help`` stays fast);
cells are plain text, never rich markup, so a PAT display name such as ``[bold]x`` prints as is,
and their control characters are shown as escapes (``\\x1b``), never sent to the terminal.
JSON is made by :func:`to_jsonable`, which refuses a :class:`~patwarden.secret.Secret` so that no
document can carry a secret by accident: a command that must print one reveals it explicitly.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import IO, TYPE_CHECKING, Any, Literal, TypeVar

import click

from patwarden.cli.options import FORMATS, JSON, TABLE
from patwarden.domain.text import visible_controls
from patwarden.secret import Secret

if TYPE_CHECKING:
    from rich.console import Console

    from patwarden.errors import PatwardenError

NON_TERMINAL_WIDTH = 200  # wide enough that ids and dates are never folded in logs and pipes

_Command = TypeVar("_Command", bound=Callable[..., Any])


def output_option(*, help_text: str | None = None) -> Callable[[_Command], _Command]:
    """The ``--output/-o table|json`` option (also accepted before the command); the parameter is
    ``output`` (None when given neither here nor before the command)."""
    from patwarden.cli.options import inherit_output

    return click.option(
        "--output",
        "-o",
        "output",
        type=click.Choice(FORMATS),
        default=None,
        callback=inherit_output,
        help=help_text or "Output format (default: table on a terminal, json otherwise).",
    )


def is_terminal(stream: IO[str] | None = None) -> bool:
    """Whether *stream* (default: stdout) is an interactive terminal."""
    target = stream if stream is not None else sys.stdout
    isatty = getattr(target, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def resolve_format(choice: str | None, *, stream: IO[str] | None = None) -> str:
    """The format to use: *choice* if given, else table on a terminal and json otherwise."""
    if choice is not None:
        return choice
    return TABLE if is_terminal(stream) else JSON


# --- JSON --------------------------------------------------------------------------------------


def to_jsonable(value: Any) -> Any:
    """Convert dataclasses, enums, datetimes, paths, tuples and mappings into JSON values.

    Datetimes become ISO 8601 in UTC, timedeltas seconds.

    Raises:
        TypeError: *value* holds a :class:`~patwarden.secret.Secret` (reveal it deliberately) or a
            type JSON cannot represent.
    """
    if isinstance(value, Secret):
        raise TypeError("refusing to serialise a Secret; reveal it explicitly if it must be shown")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value) if isinstance(value, set | frozenset) else value
        return [to_jsonable(item) for item in items]
    raise TypeError(f"cannot represent {type(value).__name__} in JSON")


def error_document(err: PatwardenError) -> dict[str, Any]:
    """The JSON a command with ``--output json`` prints when it fails with *err* (no secret:
    messages are built without one)."""
    return {
        "ok": False,
        "status": "error",
        "exit_code": err.exit_code,
        "error": {
            "type": type(err).__name__,
            "message": err.message,
            "hint": err.hint,
            "docs": err.docs,
        },
    }


def dumps(value: Any) -> str:
    """*value* as indented JSON (see :func:`to_jsonable`)."""
    import json

    return json.dumps(to_jsonable(value), indent=2, ensure_ascii=False)


JSON_PRINTED = "patwarden.json_printed"  # click meta key: stdout already has a JSON document


def echo_json(value: Any, *, stream: IO[str] | None = None) -> None:
    """Print *value* as JSON to *stream* (default: stdout)."""
    click.echo(dumps(value), file=stream)
    ctx = click.get_current_context(silent=True)
    if ctx is not None and stream is None:
        ctx.meta[JSON_PRINTED] = True  # a later error must not print a second document


def days_left(until: datetime, *, now: datetime) -> float:
    """Days from *now* until *until*, rounded to one decimal (negative: past): how every command
    shows "days left" in tables and JSON."""
    return round((until - now) / timedelta(days=1), 1)


# --- tables ------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Column:
    """One table column: the row key it shows, its header, and optional per-value styles."""

    key: str
    header: str
    justify: Literal["left", "right", "center"] = "left"
    no_wrap: bool = False
    # rich style per displayed cell text, e.g. {"✗": "bold red"}; plain when not listed.
    styles: Mapping[str, str] = field(default_factory=dict)


def format_cell(value: Any) -> str:
    """How a value reads in a table cell: dates to the minute in UTC, lists comma-separated."""
    if value is None:
        return "-"
    if isinstance(value, Secret):
        raise TypeError("refusing to print a Secret in a table")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value
        return moment.strftime("%Y-%m-%d %H:%M") + (" UTC" if value.tzinfo else "")
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, list | tuple):
        return ", ".join(format_cell(item) for item in value) or "-"
    return str(value)


def console(stream: IO[str] | None = None) -> Console:
    """A rich console for *stream* (default: stdout): colour only on a terminal, no wrapping."""
    from rich.console import Console

    terminal = is_terminal(stream)
    return Console(
        file=stream if stream is not None else sys.stdout,
        highlight=False,
        soft_wrap=False,
        width=None if terminal else NON_TERMINAL_WIDTH,
        color_system="auto" if terminal else None,
        emoji=False,
    )


def render_table(
    rows: Sequence[Mapping[str, Any]],
    *,
    columns: Sequence[Column],
    title: str | None = None,
    empty: str = "Nothing to show.",
    stream: IO[str] | None = None,
) -> None:
    """Print *rows* as a table (or *empty* when there are none); cells are never markup."""
    from rich.table import Table
    from rich.text import Text

    out = console(stream)
    if not rows:
        out.print(Text(empty))
        return
    table = Table(title=title, title_justify="left", header_style="bold", show_lines=False)
    for column in columns:
        table.add_column(
            column.header, justify=column.justify, no_wrap=column.no_wrap, overflow="fold"
        )
    for row in rows:
        cells = []
        for column in columns:
            # Values from outside (display names, owners, errors) may hold ESC sequences.
            text = visible_controls(format_cell(row.get(column.key)), keep_newlines=True)
            cells.append(Text(text, style=column.styles.get(text, "")))
        table.add_row(*cells)
    out.print(table)


def render_fields(
    fields: Sequence[tuple[str, Any]], *, title: str | None = None, stream: IO[str] | None = None
) -> None:
    """Print one object as a two-column (field, value) table."""
    render_table(
        [{"field": name, "value": value} for name, value in fields],
        columns=(Column(key="field", header="field", no_wrap=True), Column(key="value", header="")),
        title=title,
        stream=stream,
    )


def emit(
    rows: Sequence[Mapping[str, Any]],
    *,
    columns: Sequence[Column],
    output: str | None,
    document: Any = None,
    title: str | None = None,
    empty: str = "Nothing to show.",
) -> None:
    """Print *rows* on stdout in the chosen format.

    JSON prints *document* when given (e.g. an object with a summary), else the rows as a list.
    """
    if resolve_format(output) == JSON:
        echo_json(rows if document is None else document)
    else:
        render_table(rows, columns=columns, title=title, empty=empty)
