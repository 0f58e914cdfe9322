"""The Scorecard page (chapters/scorecard.md): every theorem, assumption, definition and figure of the paper, with
its chapter, the chapter's measurement and verdict pasted from the executed chapter (MyST-NB glue).

The page pastes ``{glue:text}`<chapter>.md::sc-<item>-measured:s``` and ``...-verdict:s``; each chapter glues the
two strings of the items it owns. A missing key fails the book build (-W); these tests say which one, and check the
built page shows a value in every cell.
"""
from __future__ import annotations

import json
import re

import pytest
import yaml

from conftest import ROOT

PAGE = ROOT / "chapters" / "scorecard.md"
# item -> the chapter that measures it
ITEMS = {
    "asm-3-1": "one_neuron", "thm-3-1": "one_neuron",
    "def-3-1": "smoothness", "asm-3-2": "smoothness", "fig-2": "smoothness",
    "thm-3-2": "rate", "fig-3a": "rate",
    "asm-4-1": "conv_model", "asm-4-2": "conv_model", "thm-4-1": "conv_model",
    "thm-4-2": "sgd",
    "thm-4-3": "closeness", "fig-3b": "closeness",
    "thm-4-4": "init", "cor-4-1": "init",
    "fig-3c": "mnist", "fig-3d": "mnist", "fig-4": "mnist", "fig-5": "mnist",
}
PASTE = re.compile(r"\{glue:text\}`(?P<doc>[\w/]+)\.md::(?P<key>sc-[\w-]+?)-(?P<part>measured|verdict):s`")


def pasted() -> list[tuple[str, str, str]]:
    """(chapter, item, part) of every paste on the page, outside code examples."""
    text = re.sub(r"^(````+)[^\n]*\n.*?^\1\s*$", "", PAGE.read_text(), flags=re.S | re.M)
    text = re.sub(r"``.*?``", "", text)                                  # inline code examples
    return [(m["doc"], m["key"].removeprefix("sc-"), m["part"]) for m in PASTE.finditer(text)]


def test_the_scorecard_pastes_every_paper_item_from_its_chapter():
    found = pasted()
    assert sorted(found) == sorted((doc, item, part) for item, doc in ITEMS.items()
                                   for part in ("measured", "verdict")), found
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    assert "chapters/scorecard" in files
    for doc in set(ITEMS.values()):
        assert f"chapters/{doc}" in files and (ROOT / "chapters" / f"{doc}.md").exists(), doc


def test_the_scorecard_links_every_row_to_its_chapter():
    """Rows of the list tables: paper item | chapter link | measured | verdict; the link goes to the chapter whose
    glue the row pastes, and its text is plain (no TeX)."""
    rows = re.findall(r"^\* - (?P<item>.+)\n  - \[(?P<text>[^\]]+)\]\((?P<doc>\w+)\.md\)\n"
                      r"  - \{glue:text\}`(?P<d1>\w+)\.md::.*\n  - \{glue:text\}`(?P<d2>\w+)\.md::", PAGE.read_text(),
                      flags=re.M)
    assert len(rows) == len(ITEMS)
    for item, text, doc, d1, d2 in rows:
        assert doc == d1 == d2, item
        assert not re.search(r"[\\$]", item + text), item


@pytest.mark.book
def test_every_scorecard_key_is_glued_by_its_chapter(built_book):
    missing = []
    for item, doc in ITEMS.items():
        path = ROOT / "_build" / "jupyter_execute" / "chapters" / f"{doc}.glue.json"
        keys = json.loads(path.read_text()) if path.exists() else {}
        missing += [f"{doc}.md: sc-{item}-{part}" for part in ("measured", "verdict")
                    if f"sc-{item}-{part}" not in keys]
    assert missing == [], f"chapters glue no value for {missing}"


def scorecard_rows(html_text: str) -> list[list]:
    """The body rows of the built page's scorecard tables, as lists of cells (bs4 tags)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html_text, "html.parser")
    return [row.find_all("td") for table in soup.select("table.scorecard-table") for row in table.select("tbody tr")]


def empty_cells(html_text: str) -> list[str]:
    """Problems of a built scorecard page: rows without 4 filled cells, a chapter link or a pasted value."""
    problems = []
    rows = scorecard_rows(html_text)
    if len(rows) != len(ITEMS):
        problems.append(f"{len(rows)} rows, expected {len(ITEMS)}")
    for cells in rows:
        texts = [c.get_text(" ", strip=True) for c in cells]
        name = texts[0] if texts else "?"
        if len(cells) != 4 or any(not t for t in texts):
            problems.append(f"{name}: an empty cell {texts}")
            continue
        if cells[1].find("a", href=True) is None:
            problems.append(f"{name}: no link to its chapter")
        for cell, part in zip(cells[2:], ("measured", "verdict")):
            span = cell.find("span", class_="pasted-text")
            if span is None or not span.get_text(strip=True):
                problems.append(f"{name}: no pasted {part} value")
    return problems


@pytest.mark.book
def test_the_built_scorecard_shows_a_value_in_every_row(built_book):
    problems = empty_cells((built_book / "chapters" / "scorecard.html").read_text())
    assert problems == [], problems
