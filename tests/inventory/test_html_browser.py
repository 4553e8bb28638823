"""The HTML report in a real headless Chromium: no console errors, sorting, filtering, chart.

Drives Debian's /usr/bin/chromium through Playwright (never `playwright install`). A screenshot
is saved to ``artifacts/inventory-report.png`` (git-ignored) for humans to look at.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from patwarden.inventory.html import render_html
from tests.inventory.test_html import RULES, WEEKLY, report_rows, summary_of

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# The PAT names shown in the table, in display order (the cell's first text node).
NAMES = "rs => rs.map(r => r.cells[4].firstChild.textContent.trim().toLowerCase())"

# Under CI (.ci/run installs Chromium) a missing browser fails instead of skipping silently.
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and os.environ.get("CI") != "true", reason="needs Debian's chromium"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def open_report(browser: Any, report: Path) -> tuple[Any, Any, list[str], list[str]]:
    """Open *report*; return (context, tab, console problems, requests leaving the file)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    # Any request leaving the file would be an external asset: abort it and record it.
    requests: list[str] = []

    def route(handle: Any) -> None:
        requests.append(handle.request.url)
        if handle.request.url.startswith("file://"):
            handle.continue_()
        else:
            handle.abort()

    context.route("**/*", route)
    tab = context.new_page()
    problems: list[str] = []
    tab.on(
        "console",
        lambda m: (
            problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning")
            else None
        ),
    )
    tab.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    tab.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    tab.goto(report.as_uri())
    tab.wait_for_load_state("load")
    return context, tab, problems, requests


@pytest.fixture
def page(browser: Any, tmp_path: Path) -> Iterator[tuple[Any, list[str]]]:
    rows = report_rows()
    report = tmp_path / "inventory.html"
    report.write_text(
        render_html(summary=summary_of(rows), rows=rows, rules=RULES), encoding="utf-8"
    )
    context, tab, problems, requests = open_report(browser, report)
    try:
        yield tab, problems
    finally:
        assert [u for u in requests if not u.startswith("file://")] == []
        context.close()


def visible_ids(tab: Any) -> list[str]:
    return list(tab.eval_on_selector_all("#pats tbody tr", "rs => rs.map(r => r.dataset.id)"))


def test_renders_without_console_errors(page: tuple[Any, list[str]]) -> None:
    tab, problems = page
    assert tab.title() == "Azure DevOps PAT inventory"
    assert tab.locator("#pats tbody tr").count() == 14
    assert tab.locator("#shown-count").inner_text() == "14"
    # Worst first on load: critical, then high, …, then PATs without findings.
    assert visible_ids(tab)[:2] == ["glob", "full"]
    ranks = tab.eval_on_selector_all("#pats tbody tr", "rs => rs.map(r => +r.dataset.severity)")
    assert ranks == sorted(ranks, reverse=True)
    # A display name full of markup is shown as text, and nothing ran.
    xss = tab.locator('#pats tbody tr[data-id="xss"] td[data-key="name"]')
    assert xss.inner_text().startswith('<script>alert("pwned")</script>')
    assert "(active)" not in tab.locator('#pats tbody tr[data-id="xss"]').inner_text()
    assert problems == []
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / "inventory-report.png"), full_page=True)


def test_chart_shows_the_seeded_weekly_counts(page: tuple[Any, list[str]]) -> None:
    tab, problems = page
    bars = tab.locator("#expiry-chart g.bar")
    assert bars.count() == 13
    counts = [int(bars.nth(i).get_attribute("data-count")) for i in range(13)]
    assert counts == [WEEKLY.get(i, 0) for i in range(13)]
    # The visible labels agree with the data, and taller bars mean more PATs.
    labels = [int(bars.nth(i).locator("text.count").text_content()) for i in range(13)]
    assert labels == counts
    heights = tab.eval_on_selector_all(
        "#expiry-chart g.bar rect", "rs => rs.map(r => r.getBBox().height)"
    )
    assert heights[12] > heights[2] > heights[0] > heights[5] > 0
    assert heights[1] == 0
    assert problems == []


def test_sorting_by_a_column_toggles_order(page: tuple[Any, list[str]]) -> None:
    tab, problems = page
    header = tab.locator("#pats thead th", has_text="PAT")
    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    names = tab.eval_on_selector_all("#pats tbody tr", NAMES)
    assert names == sorted(names)
    header.click()
    assert header.get_attribute("aria-sort") == "descending"
    names_desc = tab.eval_on_selector_all("#pats tbody tr", NAMES)
    assert names_desc == sorted(names, reverse=True)
    # Severity sorts numerically: the critical global PAT comes first when descending.
    sev = tab.locator("#pats thead th", has_text="Severity")
    sev.click()
    sev.click()
    assert visible_ids(tab)[0] == "glob"
    assert problems == []


def test_filtering_by_text_severity_kind_status_and_managed(page: tuple[Any, list[str]]) -> None:
    tab, problems = page
    tab.fill("#filter-text", "zz-full")
    assert visible_ids(tab) == ["full"]
    assert tab.locator("#shown-count").inner_text() == "1"
    tab.fill("#filter-text", "")
    tab.select_option("#filter-severity", "3")  # high or worse
    assert sorted(visible_ids(tab)) == ["full", "glob"]
    tab.select_option("#filter-severity", "-1")
    tab.select_option("#filter-kind", "expired")
    assert visible_ids(tab) == ["gone"]
    tab.select_option("#filter-kind", "")
    tab.select_option("#filter-status", "expired")
    assert visible_ids(tab) == ["gone"]
    tab.select_option("#filter-status", "")
    tab.check("#filter-managed")
    assert visible_ids(tab) == ["xss"]
    tab.uncheck("#filter-managed")
    # The per-kind buttons filter too, and a second click clears the filter.
    button = tab.locator('.kinds button[data-kind="global"]')
    button.click()
    assert visible_ids(tab) == ["glob"]
    assert button.get_attribute("aria-pressed") == "true"
    button.click()
    assert len(visible_ids(tab)) == 14
    assert problems == []


def test_a_large_report_opens_fast_and_pages(browser: Any, tmp_path: Path) -> None:
    from datetime import timedelta

    from patwarden.inventory.findings import evaluate
    from patwarden.inventory.summary import SummaryBuilder
    from tests.inventory.factories import NOW, pat

    builder = SummaryBuilder(now=NOW, organizations=("contoso",))
    rows = []
    for i in range(20_000):
        record = pat(
            authorization_id=f"id-{i:05d}",
            display_name=f"token-{i:05d}",
            valid_to=NOW + timedelta(days=1 + i % 120),
            is_global=i % 10 == 0,
        )
        row = evaluate(record, now=NOW, rules=RULES)
        builder.add(row)
        rows.append(row)
    report = tmp_path / "large.html"
    report.write_text(render_html(summary=builder.summary(), rows=rows, rules=RULES))
    started = time.monotonic()
    context, tab, problems, _ = open_report(browser, report)
    opened = time.monotonic() - started
    try:
        assert opened < 15, f"a 20,000-PAT report took {opened:.1f} s to open"
        assert tab.locator("#pats tbody tr").count() == 100
        assert tab.locator("#page-info").inner_text() == "1\u2013100 of 20000"
        assert tab.locator("#page-prev").is_disabled()
        tab.click("#page-next")
        assert tab.locator("#page-info").inner_text() == "101\u2013200 of 20000"
        tab.select_option("#page-size", "1000")
        assert tab.locator("#pats tbody tr").count() == 1000
        tab.fill("#filter-text", "token-04999")
        assert visible_ids(tab) == ["id-04999"]
        assert tab.locator("#shown-count").inner_text() == "1"
        assert tab.locator("#page-next").is_disabled()
        tab.fill("#filter-text", "")
        tab.select_option("#filter-kind", "global")
        assert tab.locator("#shown-count").inner_text() == "2000"
        assert problems == []
    finally:
        context.close()
