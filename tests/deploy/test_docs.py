"""docs/deploy.md and one page per recipe: links land, every recipe file is documented, the
README points at the deployment guide."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.deploy.support import DEPLOY, REPO

DOCS = REPO / "docs"
PAGES = [DOCS / "deploy.md", *sorted((DOCS / "deploy").glob("*.md"))]
RECIPES = {
    "azure-pipelines": "azure-pipelines.md",
    "container": "container.md",
    "github-actions": "github-actions.md",
    "kubernetes": "kubernetes.md",
    "systemd": "systemd.md",
}
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(page: Path) -> set[str]:
    text = page.read_text()
    found = set(re.findall(r'<a id="([^"]+)"', text))
    for heading in re.findall(r"^#+ (.+)$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def test_every_recipe_folder_has_its_page_and_no_page_lacks_a_recipe() -> None:
    assert sorted(p.name for p in DEPLOY.iterdir() if p.is_dir()) == sorted(RECIPES)
    assert sorted(p.name for p in (DOCS / "deploy").glob("*.md")) == sorted(RECIPES.values())


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_relative_link_lands(page: Path) -> None:
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.name}: {target} does not exist"
        if anchor and resolved.suffix == ".md":
            assert anchor in _anchors(resolved), f"{page.name}: no #{anchor} in {path}"


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_each_page_names_every_file_of_its_recipe_and_the_four_topics(recipe: str) -> None:
    text = (DOCS / "deploy" / RECIPES[recipe]).read_text()
    for path in (DEPLOY / recipe).rglob("*"):
        if path.is_file():
            assert path.name in text, f"{RECIPES[recipe]} does not mention {path.name}"
    assert "## Upgrading" in text
    assert "## How this recipe is checked" in text or "## How it is tested" in text
    assert "## What to create in Azure, step by step" in text
    assert "token cache" in text
    assert "state" in text


def test_the_readme_links_the_deployment_guide() -> None:
    assert "(docs/deploy.md)" in (REPO / "README.md").read_text()
