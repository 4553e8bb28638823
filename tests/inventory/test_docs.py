"""docs/inventory.md documents exactly what the code does: columns, fields, findings, scopes."""

from __future__ import annotations

import re
from pathlib import Path

from patwarden.inventory.export import CSV_COLUMNS, row_to_json, summary_to_json
from patwarden.inventory.findings import BROAD_SCOPES, SEVERITIES, FindingRules, evaluate
from patwarden.inventory.summary import SummaryBuilder
from tests.inventory.factories import NOW, pat

DOC = (Path(__file__).resolve().parents[2] / "docs" / "inventory.md").read_text()


def section(title: str) -> str:
    start = DOC.index(title)
    following = DOC.find("\n#", start + len(title))
    return DOC[start : following if following != -1 else None]


def first_column(text: str) -> list[str]:
    """The backticked names in the first column of the first Markdown table in *text*."""
    names = []
    for line in text.splitlines():
        match = re.match(r"\| `([^`]+)` \|", line)
        if match:
            names.append(match.group(1))
    return names


def test_csv_columns_are_documented_in_order() -> None:
    assert tuple(first_column(section("### CSV"))) == CSV_COLUMNS


def test_json_fields_are_documented() -> None:
    text = section("### JSON")
    documented = first_column(text)
    row = row_to_json(evaluate(pat(), now=NOW, rules=FindingRules()), now=NOW)
    top_level = ["schema", "generated_at", "organizations", "rules", "pats", "summary", "problems"]
    assert documented[: len(top_level)] == top_level
    assert documented[len(top_level) :] == list(row)
    summary = summary_to_json(SummaryBuilder(now=NOW, organizations=()).summary())
    for key in summary:
        assert f"`{key}`" in text, key


def test_every_finding_and_its_severity_is_documented() -> None:
    documented = {}
    for line in section("## Findings").splitlines():
        match = re.match(r"\| `([a-z-]+)` \| (\w+)", line)
        if match:
            documented[match.group(1)] = match.group(2)
    assert documented == {kind.value: sev.label for kind, sev in SEVERITIES.items()}


def test_broad_scope_list_is_documented() -> None:
    text = section("**Broad write/manage scopes.**")
    listed = set(re.findall(r"`(vso\.[a-z_.]+)`", text.split("`app_token`")[0]))
    assert listed == set(BROAD_SCOPES)
