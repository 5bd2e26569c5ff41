"""The README is the front door: short, opening with what works today, pointing into the site.

The reference itself lives on the site's pages (docs/*.md), which tests/unit/test_docs.py
checks together with the README.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
MAX_LINES = 250
LINK = re.compile(r"\]\(((?:docs/)[\w./-]*\.md)(?:#([\w-]+))?\)")
TABLE_ROW = re.compile(r"^\| (?!---)(.+) \|$", re.M)


def section(title: str) -> str:
    """Return the text of the README's `## <title>` section."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f"README has no '## {title}' section"
    return match[1]


def anchors(markdown: str) -> set[str]:
    """Return the ids the site gives the headings of a page (Python-Markdown's slugs)."""
    found = set()
    fenced = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        match = None if fenced else re.match(r"^#{1,6} (.+)$", line)
        if match:
            text = re.sub(r"[`*]", "", match[1])
            text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
            text = re.sub(r"[^\w\s-]", "", text).strip().lower()
            found.add(re.sub(r"[-\s]+", "-", text))
    return found


def test_readme__is_at_most_250_lines() -> None:
    lines = README.count("\n") + (not README.endswith("\n"))
    assert lines <= MAX_LINES, f"README.md has {lines} lines; move detail into docs/"


def test_readme__quickstart_is_make_demo_and_make_test() -> None:
    blocks = re.findall(r"^```(?:sh|bash|console)?\n(.*?)^```", section("Quickstart"), re.M | re.S)
    commands = [line for block in blocks for line in block.splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]


def test_readme__installation_opens_with_what_installs_today() -> None:
    """The package is not on PyPI: the first pip line installs from a checkout or git."""
    installs = re.findall(r"^pip install (\S+)", section("Installation"), re.M)
    assert installs, "the Installation section shows no pip install"
    first = installs[0].strip("'\"")
    assert first.startswith(("./", ".[", "/")) or "git+" in first, first


def test_readme__links_into_the_site_reach_pages_and_headings() -> None:
    links = LINK.findall(README)
    assert {path for path, _ in links} >= {"docs/tutorial.md", "docs/installation.md",
                                           "docs/migrating.md", "docs/benchmarks.md"}
    for path, anchor in links:
        target = ROOT / path
        assert target.exists(), path
        if anchor:
            assert anchor in anchors(target.read_text()), f"{path}#{anchor}"


def test_readme__benchmark_figures_are_the_benchmarks_page_figures() -> None:
    """Every figure the README gives is a row of the Benchmarks page, word for word, so
    the two cannot disagree."""
    rows = TABLE_ROW.findall(section("One benchmark run"))
    figures = [row for row in rows if row != "What | Figure"]
    assert len(figures) >= 3
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    for row in figures:
        assert re.search(rf"^\| {re.escape(row)} \|", page, re.M), row
