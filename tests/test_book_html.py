"""The built HTML: widget state embedded, widget JS only where needed, nothing loaded from off-host."""
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import widget_chapters

pytestmark = pytest.mark.book
WIDGET_PAGES = {f"chapters/{stem}.html" for stem in widget_chapters()}


class Resources(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.urls.append(a["src"])
        if tag == "link" and a.get("href"):
            self.urls.append(a["href"])
        if tag in ("img", "iframe", "source", "video", "audio", "embed") and a.get("src"):
            self.urls.append(a["src"])


def pages(html: Path):
    return sorted(p for p in html.rglob("*.html") if "_static" not in p.parts and "_sources" not in p.parts)


def test_no_off_host_resources_on_any_page(built_book):
    for page in pages(built_book):
        parser = Resources()
        parser.feed(page.read_text())
        off = [u for u in parser.urls if re.match(r"^(https?:)?//", u)]
        assert not off, f"{page.relative_to(built_book)} loads {off}"


def test_widget_state_and_js_only_on_widget_pages(built_book):
    seen = set()
    for page in pages(built_book):
        rel = page.relative_to(built_book).as_posix()
        text = page.read_text()
        has_state = "application/vnd.jupyter.widget-state+json" in text
        has_js = "_static/widgets/embed-amd.js" in text
        assert has_js == has_state, f"{rel}: widget JS {'without' if has_js else 'missing for'} widget state"
        if has_state:
            seen.add(rel)
            state = re.search(r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>', text, re.S)
            models = json.loads(state.group(1))["state"]
            kinds = {m["model_name"] for m in models.values()}
            assert {"SelectionSliderModel", "StackModel", "LinkModel", "HTMLModel"} <= kinds, kinds
            for m in models.values():
                if m["model_name"] == "LinkModel":
                    assert m["state"]["source"][1] == "index" and m["state"]["target"][1] == "selected_index"
    assert WIDGET_PAGES <= seen, f"widget state missing on {WIDGET_PAGES - seen}"


def test_proofs_figures_and_citations_render(built_book):
    text = (built_book / "chapters" / "gd_gaussian.html").read_text()
    assert 'id="thm-gd-gaussian-global"' in text and "Theorem 3.1" in text
    assert re.search(r"Fig\. \d+", text), "numbered figures are missing"
    assert "Du" in text and "2018" in text
    assert "colab.research.google.com" in text and "gd_gaussian.ipynb" in text   # launch button opens the .ipynb
    assert "_static/mathjax/tex-mml-chtml.js" in text
    assert 'class="solution' in text


def test_status_page_lists_chapter_times(built_book):
    text = (built_book / "chapters" / "status.html").read_text()
    assert "gd_gaussian" in text and re.search(r"\d+\.\d+", text)


class Anchors(HTMLParser):
    """Every <a href> and every id (or name) on a page."""

    def __init__(self):
        super().__init__()
        self.hrefs, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"])
        for key in ("id", "name"):
            if a.get(key):
                self.ids.add(a[key])


def test_internal_links_resolve(built_book):
    from urllib.parse import unquote

    parsed = {}

    def parse(path):
        if path not in parsed:
            p = Anchors()
            p.feed(path.read_text())
            parsed[path] = p
        return parsed[path]

    broken = []
    for page in pages(built_book):
        for href in parse(page).hrefs:
            if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", href) or href.startswith("//"):
                continue                                   # an external link (a reader may follow it; nothing loads)
            path, _, frag = href.partition("#")
            target = (page.parent / unquote(path)).resolve() if path else page
            if not target.exists():
                broken.append(f"{page.relative_to(built_book)} → {href} (no such file)")
            elif frag and target.suffix == ".html" and unquote(frag) not in parse(target).ids:
                broken.append(f"{page.relative_to(built_book)} → {href} (no such anchor)")
    assert not broken, "\n".join(broken)


def test_exercises_are_numbered_per_chapter(built_book):
    """Every page numbers its exercises 1, 2, … in order (tools/sphinx renumbers them per page), and each solution
    names the number of its exercise."""
    seen = 0
    for path in sorted((built_book / "chapters").glob("*.html")):
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", path.read_text()))
        numbers = sorted(set(int(n) for n in re.findall(r"(?<!Solution to )Exercise (\d+) \(", text)))
        if not numbers:
            continue
        seen += 1
        assert numbers == list(range(1, len(numbers) + 1)), (path.name, numbers)
        solved = sorted(set(int(n) for n in re.findall(r"Solution to Exercise (\d+)", text)))
        assert set(solved) <= set(numbers), (path.name, solved, numbers)
    assert seen >= 8
