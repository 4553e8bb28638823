"""The HTML report as a string: self-contained, escaped, with the chart's counts."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from patwarden.inventory.findings import FindingRules, evaluate
from patwarden.inventory.html import (
    ROW_SEPARATOR,
    expiry_chart,
    html_head,
    html_tail,
    render_html,
    row_json,
)
from patwarden.inventory.model import InventoryRow, Owner
from patwarden.inventory.summary import InventorySummary, SummaryBuilder
from tests.inventory.factories import DAY, NOW, data_of, pat

RULES = FindingRules()
# Active PATs per week (index = weeks from now) the report must show.
WEEKLY = {0: 2, 2: 3, 5: 1, 12: 4}


def report_rows() -> list[InventoryRow]:
    """Rows with known weekly expiries plus one of every finding kind."""
    records = []
    n = 0
    for week, count in WEEKLY.items():
        for _ in range(count):
            n += 1
            records.append(
                pat(
                    authorization_id=f"w{week}-{n}",
                    display_name=f"weekly-{week}-{n}",
                    valid_from=NOW - DAY,
                    valid_to=NOW + timedelta(days=7 * week + 1),
                )
            )
    records += [
        pat(
            authorization_id="glob",
            display_name="old-global",
            is_global=True,
            valid_to=NOW + 200 * DAY,
            valid_from=NOW - DAY,
        ),
        pat(
            authorization_id="full",
            display_name="zz-full",
            scopes=("app_token",),
            valid_to=NOW + 100 * DAY,
            valid_from=NOW - DAY,
        ),
        pat(authorization_id="gone", display_name="expired-one", valid_to=NOW - 3 * DAY),
        pat(
            authorization_id="xss",
            display_name='<script>alert("pwned")</script>',
            owner=Owner(descriptor="aad.mallory", principal_name="<b>mallory</b>@x"),
            valid_to=NOW + 100 * DAY,
            valid_from=NOW - DAY,
            managed=True,
        ),
    ]
    return [evaluate(r, now=NOW, rules=RULES) for r in records]


def summary_of(rows: list[InventoryRow]) -> InventorySummary:
    builder = SummaryBuilder(now=NOW, organizations=("contoso",))
    for row in rows:
        builder.add(row)
    return builder.summary(users_scanned=7)


def render() -> str:
    rows = report_rows()
    return render_html(summary=summary_of(rows), rows=rows, rules=RULES, problems=("p<1>",))


def test_page_is_self_contained() -> None:
    page = render()
    assert page.startswith("<!DOCTYPE html>")
    assert "Content-Security-Policy" in page
    for forbidden in ("<link", "@import", "url(", " src=", "href=", "https://"):
        assert forbidden not in page, forbidden
    # The only absolute URL is the SVG namespace, which is never fetched.
    assert re.findall(r"http://[^\"']+", page) == ["http://www.w3.org/2000/svg"]


def test_values_from_azure_devops_cannot_break_out_of_the_page() -> None:
    page = render()
    assert "<script>alert" not in page
    assert "<b>mallory" not in page
    assert r"\u003cscript\u003ealert(\"pwned\")\u003c/script\u003e" in page
    assert page.count("<script") == 2  # the data block and ours
    assert page.count("</script>") == 2
    assert "p&lt;1&gt;" in page
    names = {row["id"]: row["name"] for row in data_of(page)}
    assert names["xss"] == '<script>alert("pwned")</script>'  # intact once parsed


def test_chart_has_one_bar_per_week_with_the_counts() -> None:
    rows = report_rows()
    chart = expiry_chart(summary_of(rows).expiry_weeks)
    pattern = r'<g class="bar" data-week-start="[^"]+" data-count="(\d+)"'
    counts = [int(c) for c in re.findall(pattern, chart)]
    assert counts == [WEEKLY.get(i, 0) for i in range(13)]
    starts = re.findall(r'data-week-start="([^"]+)"', chart)
    assert starts[0] == "2026-11-27"
    assert starts[1] == "2026-12-04"


def test_summary_cards_and_rows() -> None:
    page = render()
    assert '<div class="n">14</div><div class="l">PATs</div>' in page
    assert '<div class="n">7</div><div class="l">Users scanned</div>' in page
    assert len(data_of(page)) == 14
    assert 'data-kind-count="global">1<' in page
    assert 'data-kind-count="expired">1<' in page
    assert "Scan problems" in page


def test_streaming_parts_make_the_same_page() -> None:
    rows = report_rows()
    summary = summary_of(rows)
    whole = render_html(summary=summary, rows=rows, rules=RULES)
    body = ROW_SEPARATOR.join(map(row_json, rows))
    assert html_head(summary=summary, rules=RULES) + body + html_tail() == whole
    empty = render_html(summary=summary_of([]), rows=[], rules=RULES)
    assert data_of(empty) == []


def test_row_data() -> None:
    row = evaluate(
        pat(is_global=True, scopes=("app_token",), managed=True, authorization_id="a-1"),
        now=NOW,
        rules=RULES,
    )
    data = json.loads(row_json(row))
    assert data == {
        "id": "a-1",
        "org": "contoso",
        "owner": "alice@contoso.example",
        "ownerStatus": "active",
        "name": "ci-feed-reader",
        "scopes": "app_token",
        "validTo": "2026-12-17T12:00:00Z",
        "lifetime": 30,
        "status": "active",
        "managed": True,
        "severity": 4,
        "findings": [
            ["global", "critical", row.findings[0].summary, row.findings[0].fix],
            ["full-access", "high", row.findings[1].summary, row.findings[1].fix],
        ],
    }
