"""Where scanned rows go: a JSON/CSV stream, an HTML file, or nowhere (the terminal table).

Every output is written row by row. A file output is written to a temporary file beside the
target (mode 0600: the report maps who holds which access) and renamed into place only when the
scan finished, so a failed scan never leaves half a report where the last good one was. The HTML
page needs its summary before its rows, so its rows are spooled to a temporary file first.
"""

from __future__ import annotations

import enum
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Protocol, TextIO

from patwarden.errors import ConfigError
from patwarden.inventory.export import CsvWriter, JsonWriter
from patwarden.inventory.findings import FindingRules
from patwarden.inventory.html import ROW_SEPARATOR, html_head, html_tail, row_json
from patwarden.inventory.model import InventoryRow
from patwarden.inventory.summary import InventorySummary


class OutputFormat(enum.StrEnum):
    """The ``--output`` formats."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    HTML = "html"


class RowOutput(Protocol):
    """Receives rows as they stream, then the summary once."""

    def write(self, row: InventoryRow) -> None:
        """Add one row."""
        ...

    def finish(self, summary: InventorySummary, problems: Sequence[str]) -> None:
        """Write whatever comes after the rows."""
        ...


class NullOutput:
    """Keeps nothing (the terminal table is drawn from the summary's worst rows)."""

    def write(self, row: InventoryRow) -> None:
        """Ignore *row*."""

    def finish(self, summary: InventorySummary, problems: Sequence[str]) -> None:
        """Nothing to finish."""


class JsonOutput:
    """The JSON document, streamed."""

    def __init__(
        self, out: TextIO, *, now: datetime, organizations: Sequence[str], rules: FindingRules
    ) -> None:
        self._writer = JsonWriter(out, now=now, organizations=organizations, rules=rules)

    def write(self, row: InventoryRow) -> None:
        """Append *row* to ``pats``."""
        self._writer.write(row)

    def finish(self, summary: InventorySummary, problems: Sequence[str]) -> None:
        """Write ``summary`` and ``problems`` and close the document."""
        self._writer.finish(summary, problems=problems)


class CsvOutput:
    """The CSV table, streamed (the summary is not part of a CSV)."""

    def __init__(self, out: TextIO, *, now: datetime) -> None:
        self._writer = CsvWriter(out, now=now)

    def write(self, row: InventoryRow) -> None:
        """Append *row*."""
        self._writer.write(row)

    def finish(self, summary: InventorySummary, problems: Sequence[str]) -> None:
        """Nothing follows the rows."""


class HtmlOutput:
    """The HTML page: rows spooled to *spool*, then head + rows + tail written to *out*."""

    def __init__(self, out: TextIO, *, spool: TextIO, rules: FindingRules) -> None:
        self._out = out
        self._spool = spool
        self._rules = rules
        self._first = True

    def write(self, row: InventoryRow) -> None:
        """Spool the JSON of *row*."""
        if not self._first:
            self._spool.write(ROW_SEPARATOR)
        self._first = False
        self._spool.write(row_json(row))

    def finish(self, summary: InventorySummary, problems: Sequence[str]) -> None:
        """Write the page."""
        self._out.write(html_head(summary=summary, rules=self._rules, problems=problems))
        self._spool.seek(0)
        shutil.copyfileobj(self._spool, self._out)
        self._out.write(html_tail())


@contextmanager
def _file_or_stdout(path: Path | None) -> Iterator[TextIO]:
    """Yield stdout, or a private temporary file that replaces *path* on success."""
    if path is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    target = path.expanduser()
    directory = target.parent if str(target.parent) else Path()
    if not directory.is_dir():
        raise ConfigError(
            f"Cannot write the report to {target}: folder {directory} does not exist.",
            hint="Create the folder or choose another path.",
        )
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


@contextmanager
def open_output(
    fmt: OutputFormat,
    *,
    path: Path | None,
    now: datetime,
    organizations: Sequence[str],
    rules: FindingRules,
) -> Iterator[RowOutput]:
    """Yield the :class:`RowOutput` for *fmt*, writing to *path* (or stdout).

    Raises:
        ConfigError: HTML without a file, a table with a file, or a missing folder.
    """
    if fmt is OutputFormat.TABLE:
        if path is not None:
            raise ConfigError(
                "The table output is for the terminal; it cannot be written to a file.",
                hint="Use --output json|csv|html with a file, e.g. --output html report.html.",
            )
        yield NullOutput()
        return
    if fmt is OutputFormat.HTML and path is None:
        raise ConfigError(
            "The HTML report needs a file name.",
            hint="Pass it after the format: --output html inventory.html.",
        )
    with _file_or_stdout(path) as out:
        if fmt is OutputFormat.JSON:
            json_output = JsonOutput(out, now=now, organizations=organizations, rules=rules)
            yield json_output
        elif fmt is OutputFormat.CSV:
            yield CsvOutput(out, now=now)
        else:
            with tempfile.TemporaryFile("w+", encoding="utf-8") as spool:
                yield HtmlOutput(out, spool=spool, rules=rules)
