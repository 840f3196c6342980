"""README.md and docs/*.md: every relative link and image leads somewhere, anchors included.

The pages are parsed by markdown-it-py (CommonMark, with tables) and headings get their ids from
mdit-py-plugins' anchors plugin, which mimics GitHub's slugs; a link to ``page.md#anchor`` must
name a heading of that page. Links to the web are not fetched.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from markdown_it import MarkdownIt
from mdit_py_plugins.anchors import anchors_plugin

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 250


def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("table").use(anchors_plugin, min_level=1, max_level=6)


def _tokens(path: Path):
    for token in _parser().parse(path.read_text(encoding="utf-8")):
        yield token
        yield from token.children or ()


def links(path: Path) -> list[str]:
    """Every link target and image source of a Markdown page, as written."""
    found = []
    for token in _tokens(path):
        if token.type == "link_open":
            found.append(str(token.attrGet("href")))
        elif token.type == "image":
            found.append(str(token.attrGet("src")))
    return found


def anchors(path: Path) -> set[str]:
    return {str(t.attrGet("id")) for t in _tokens(path) if t.type == "heading_open"}


def broken(path: Path) -> list[str]:
    """The relative links of ``path`` that lead nowhere, each with the reason."""
    problems = []
    for target in links(path):
        parts = urlsplit(target)
        if parts.scheme or target.startswith("//"):
            continue                      # the web, mailto: not checked here
        where = (path.parent / unquote(parts.path)).resolve() if parts.path else path
        if not where.exists():
            problems.append(f"{target}: {where.relative_to(ROOT) if where.is_relative_to(ROOT) else where} is missing")
            continue
        if parts.fragment and where.suffix == ".md" and parts.fragment not in anchors(where):
            problems.append(f"{target}: {where.name} has no heading #{parts.fragment}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_every_relative_link_leads_somewhere(page):
    assert broken(page) == [], f"{page.relative_to(ROOT)}: fix or remove these links"


def test_the_readme_links_every_docs_page_and_stays_short():
    # GIVEN the README, THEN it reaches every page of docs/ and fits on a few screens
    linked = {(ROOT / urlsplit(t).path).resolve() for t in links(ROOT / "README.md") if not urlsplit(t).scheme}
    unlinked = [p.name for p in PAGES[1:] if p.resolve() not in linked]
    assert unlinked == [], f"README.md does not link {unlinked}"
    lines = len((ROOT / "README.md").read_text(encoding="utf-8").splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move reference material to docs/"


def test_the_checker_finds_a_broken_file_and_a_broken_anchor(tmp_path):
    # GIVEN a page with one good link, a missing file and an anchor its target lacks
    (tmp_path / "other.md").write_text("# Other page\n\n## Tuning: what a recommendation rests on\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](other.md#tuning-what-a-recommendation-rests-on) [gone](missing.md) "
                    "[bad](other.md#no-such-heading) ![img](pic.png) [web](https://example.com/x)\n\n"
                    "| a | b |\n|---|---|\n| [in a table](also-missing.md) | |\n")
    # WHEN checked, THEN exactly the four broken ones are named
    problems = broken(page)
    assert len(problems) == 4, problems
    assert [p.split(":")[0] for p in problems] == ["missing.md", "other.md#no-such-heading", "pic.png",
                                                   "also-missing.md"]
