"""The status page in Debian's Chromium (through Playwright, never `playwright install`), served
by the real endpoint server: no console errors (a CSP violation would be one), no request beyond
the page, the seeded states visible with JavaScript off. The screenshot is saved under the test's
tmp dir (``status-page.png``) and its path printed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from patwarden.service.snapshot import Snapshot
from tests.inventory.test_html_browser import CHROMIUM, CHROMIUM_ARGS
from tests.service.seeded import seeded_snapshot
from tests.service.test_http import serve

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


def test_status_page_in_chromium(browser: Any, tmp_path: Path) -> None:
    snapshot: list[Snapshot] = [seeded_snapshot(broken_sign_in=True)]
    server = serve(snapshot)
    try:
        context = browser.new_context(
            viewport={"width": 1400, "height": 1000}, java_script_enabled=False
        )
        requests: list[str] = []
        context.on("request", lambda r: requests.append(r.url))
        tab = context.new_page()
        problems: list[str] = []
        tab.on(
            "console",
            lambda m: (
                problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None
            ),
        )
        tab.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        tab.goto(server.address + "/")
        tab.wait_for_load_state("load")
        shot = tmp_path / "status-page.png"
        tab.screenshot(path=str(shot), full_page=True)
        print(f"status page screenshot: {shot}")
        text = tab.inner_text("body")
        rows = {
            name: tab.inner_text(f"#token-{name}")
            for name in ("flux-git", "nuget-feed", "argo-repo")
        }
        identity = tab.inner_text("#identity-rotator")
        problem_list = tab.inner_text("#problems")
        context.close()
        # The inline style sheet is allowed by its hash in the CSP: the badges are coloured.
        styled = browser.new_context()
        page = styled.new_page()
        page.goto(server.address + "/")
        badge = "e => getComputedStyle(e).backgroundColor"
        failed_badge = page.eval_on_selector("#token-nuget-feed .badge", badge)
        styled.close()
    finally:
        server.stop()
    assert problems == []
    assert requests == [server.address + "/"]
    assert shot.stat().st_size > 10_000
    assert "ok" in rows["flux-git"]
    assert "issued 5 d 0 h ago" in rows["flux-git"]
    assert "in 25 d" in rows["flux-git"]
    assert "failed" in rows["nuget-feed"]
    assert "drift" in rows["argo-repo"]
    assert "re-login needed" in identity
    assert "re-login in 9 d 4 h" in identity
    assert "grant the writer Key Vault Secrets Officer" in problem_list
    assert "run `patwarden login --identity rotator`" in problem_list
    assert "Recent audit events" in text
    assert "rotated" in text
    assert failed_badge == "rgb(253, 231, 231)"
