"""Output targets: private files replaced only on success, format/path combinations."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from patwarden.errors import ConfigError
from patwarden.inventory.findings import FindingRules, evaluate
from patwarden.inventory.outputs import OutputFormat, open_output
from patwarden.inventory.summary import SummaryBuilder
from tests.inventory.factories import NOW, pat

RULES = FindingRules()


def write(fmt: OutputFormat, path: Path | None, *, fail: bool = False) -> None:
    builder = SummaryBuilder(now=NOW, organizations=("contoso",))
    with open_output(fmt, path=path, now=NOW, organizations=("contoso",), rules=RULES) as out:
        for i in range(3):
            row = evaluate(pat(authorization_id=f"id-{i}"), now=NOW, rules=RULES)
            builder.add(row)
            out.write(row)
            if fail and i == 1:
                raise RuntimeError("scan died")
        out.finish(builder.summary(), ())


@pytest.mark.parametrize("fmt", [OutputFormat.JSON, OutputFormat.CSV, OutputFormat.HTML])
def test_file_is_private_and_complete(fmt: OutputFormat, tmp_path: Path) -> None:
    target = tmp_path / f"out.{fmt.value}"
    write(fmt, target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    text = target.read_text()
    assert text.count("id-") >= 3
    if fmt is OutputFormat.JSON:
        assert len(json.loads(text)["pats"]) == 3
    if fmt is OutputFormat.HTML:
        assert text.index("<thead>") < text.index("id-0") < text.index("</html>")
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_a_failed_scan_keeps_the_previous_report_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("previous")
    with pytest.raises(RuntimeError, match="scan died"):
        write(OutputFormat.JSON, target, fail=True)
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_json_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    write(OutputFormat.JSON, None)
    assert len(json.loads(capsys.readouterr().out)["pats"]) == 3


@pytest.mark.parametrize(
    ("fmt", "path", "message"),
    [
        (OutputFormat.HTML, None, "needs a file name"),
        (OutputFormat.TABLE, Path("x.txt"), "cannot be written to a file"),
        (OutputFormat.CSV, Path("/no/such/folder/x.csv"), "does not exist"),
    ],
)
def test_bad_combinations(fmt: OutputFormat, path: Path | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        write(fmt, path)
