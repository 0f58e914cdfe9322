"""The book in headless Chromium, offline: every page loads and renders, every kernel-free slider changes its
figure, nothing leaves 127.0.0.1, and every page fits its column.

Layout, measured on every page at a 1280-px window (a laptop): no box (a code cell's or an output's ``pre``, an
output box, display math) holds content wider than the box; no output is a table printed as text (columns
aligned with spaces: the chapters show results as HTML tables, filterlib.Table); no link text shows TeX (a
backslash or a dollar sign, or math that MathJax typeset); figures and widget frames are sharp on high-density
screens (two image pixels per displayed pixel). At a 390-px window (a phone) the page itself never scrolls
sideways. Each failure names the page, the element (its kind and the section it is in) and a snippet of its
content.

Accessibility (WCAG 2.1 AA; the statement is chapters/accessibility.md): axe-core (vendored, vendor/VERSIONS) runs
every WCAG 2.0/2.1 A and AA rule on every page in light and dark mode and finds no violation, except the
theme-owned rules listed by id in the statement's "Exceptions owned by the theme"; every image has an alt text
that is not a file name and has a few words; every equation carries MathJax's assistive MathML; every slider,
moved by the arrow keys alone, changes its figure, its announced value (aria-valuetext) and its frame's alt text,
which contains the value.

FILTERBOOK_SCREENSHOTS=DIR also writes a full-page screenshot of every page at both widths into DIR
(``chapters_rate-1280.png``, ``chapters_rate-390.png`` ...), to look at.

Drives Debian's chromium (no browser download) with Playwright; `make test` installs chromium when it is missing.
"""
from __future__ import annotations

import functools
import os
import re
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from conftest import ROOT, widget_chapters

pytestmark = pytest.mark.book
CHROMIUM = os.environ.get("FILTERLIB_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(built_book):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(built_book)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.fail(f"no chromium at {CHROMIUM}: run tools/ensure_chromium.sh (make test does) or set FILTERLIB_CHROMIUM")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)   # a fresh temporary profile each time
        yield b
        b.close()


def open_page(browser, url, width=1280, height=1600, color_scheme="light"):
    page = browser.new_page(viewport={"width": width, "height": height}, color_scheme=color_scheme)
    log = {"requests": [], "failed": [], "errors": []}
    page.on("request", lambda r: log["requests"].append(r.url))
    page.on("requestfailed", lambda r: log["failed"].append(r.url))
    page.on("response", lambda r: r.status >= 400 and not r.url.endswith("/favicon.ico")
            and log["failed"].append(f"{r.status} {r.url}"))
    page.on("pageerror", lambda e: log["errors"].append(str(e)))
    page.goto(url, wait_until="load")
    return page, log


def off_host(urls):
    return [u for u in urls if urlparse(u).scheme not in ("blob", "data") and urlparse(u).hostname != "127.0.0.1"]


def test_demo_slider_changes_figure_without_kernel(server, browser):
    page, log = open_page(browser, f"{server}/chapters/gd_gaussian.html")
    slider = page.locator(".widget-selection-slider, .widget-hslider").first
    slider.wait_for(state="visible", timeout=30_000)
    readout = page.locator(".widget-readout").first
    assert readout.inner_text().strip() == "0.25"                 # the slider shows the value, not the index
    frame = page.locator(".widget-vbox > .widget-box").first      # the Stack of precomputed frames
    frame.locator("img").first.wait_for(state="visible", timeout=30_000)
    before = frame.screenshot()
    handle = slider.locator(".noUi-handle").first
    handle.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.querySelector('.widget-readout').textContent.trim() === '2'")
    page.wait_for_timeout(300)
    after = frame.screenshot()
    assert before != after, "moving the slider did not change the figure"
    assert off_host(log["requests"]) == [], off_host(log["requests"])
    assert log["failed"] == [], log["failed"]
    assert log["errors"] == [], log["errors"]
    page.close()


@pytest.mark.parametrize("name", [f"{stem}.html" for stem in widget_chapters()])
def test_every_widget_slider_changes_its_figure(server, browser, name):
    page, log = open_page(browser, f"{server}/chapters/{name}")
    boxes = page.locator(".widget-vbox")
    boxes.first.wait_for(state="visible", timeout=30_000)
    for i in range(boxes.count()):
        box = boxes.nth(i)
        box.scroll_into_view_if_needed()
        frame = box.locator(":scope > .widget-box").first
        frame.locator("img").first.wait_for(state="visible", timeout=30_000)
        readout = box.locator(".widget-readout").first
        before, label = frame.screenshot(), readout.inner_text()
        box.locator(".noUi-handle").first.focus()
        page.keyboard.press("ArrowRight")
        page.wait_for_timeout(300)
        if readout.inner_text() == label:          # the slider starts at its last value: go left instead
            page.keyboard.press("ArrowLeft")
            page.keyboard.press("ArrowLeft")
            page.wait_for_timeout(300)
        assert readout.inner_text() != label, f"slider {i} on {name} did not move"
        assert frame.screenshot() != before, f"slider {i} on {name} did not change its figure"
    assert off_host(log["requests"]) == [] and log["failed"] == [] and log["errors"] == [], log
    page.close()


def book_pages() -> list[str]:
    """Every page of the book: the chapters of _toc.yml, plus Sphinx's index, search and general index pages."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    names = [toc["root"]] + [c["file"] for part in toc.get("parts", []) for c in part["chapters"]]
    return [f"{n}.html" for n in names] + ["index.html", "search.html", "genindex.html"]


def source_of(name: str) -> str:
    """The MyST source of a page, with fenced code blocks of 4+ backticks (markup shown as an example) removed."""
    md = ROOT / name.replace(".html", ".md")
    text = md.read_text() if md.exists() else ""
    return re.sub(r"^(````+)[^\n]*\n.*?^\1\s*$", "", text, flags=re.S | re.M)


@pytest.mark.parametrize("name", book_pages())
def test_every_page_loads_offline_without_errors_and_renders(server, browser, name):
    page, log = open_page(browser, f"{server}/{name}")
    page.wait_for_load_state("networkidle")
    src = source_of(name)
    if re.search(r"\$[^$\n]+\$|\{math\}|\$\$", src):
        page.wait_for_selector("mjx-container", state="attached", timeout=30_000)   # MathJax (vendored) ran
        assert page.locator("mjx-merror").count() == 0, "MathJax reported a TeX error"
        prose = page.locator("article").first.inner_text()
        assert "\\(" not in prose and "\\[" not in prose, "some math was left untypeset"
    blocks = len(re.findall(r"```\{prf:(theorem|lemma|assumption|definition|proposition|corollary)\}", src))
    if blocks:
        proofs = page.locator("div.proof")
        assert proofs.count() >= blocks, f"{blocks} sphinx-proof blocks in the source, {proofs.count()} rendered"
        assert proofs.first.locator(".admonition-title, p.admonition-title").first.is_visible()
    if "{exercise}" in src:
        assert page.locator("div.exercise").count() >= 1
    assert off_host(log["requests"]) == [], off_host(log["requests"])
    assert log["failed"] == [], log["failed"]
    assert log["errors"] == [], log["errors"]
    page.close()


# ---------------------------------------------------------------------------------------------------------------
# Layout: nothing wider than its box at 1280 px, no printed text tables, plain link texts, no sideways scroll at 390
# ---------------------------------------------------------------------------------------------------------------
DESKTOP, PHONE = 1280, 390
SCREENSHOTS = os.environ.get("FILTERBOOK_SCREENSHOTS", "")

# Ready to measure: MathJax has typeset the page, widgets are drawn, and every collapsed block (hidden inputs,
# dropdown solutions) is opened, since a reader who opens it sees its full width.
SETTLE = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  document.querySelectorAll('.toggle-hidden').forEach(e => e.classList.remove('toggle-hidden'));
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
}"""

# The boxes whose content must fit: code and output pre, output boxes, display math. Only the innermost box that
# overflows is reported (a pre that is too wide also makes its output box too wide when it does not scroll).
MEASURE = r"""() => {
  const article = document.querySelector('article') || document.body;
  const where = e => { const s = e.closest('section[id]'); return s ? '#' + s.id : '(top)'; };
  const kind = e => e.tagName.toLowerCase() + [...e.classList].slice(0, 3).map(c => '.' + c).join('');
  const tex = e => {
    try {
      const items = MathJax.startup.document.getMathItemsWithin(e);
      if (items.length) { return items.map(i => i.math).join(' '); }
    } catch (err) {}
    return e.textContent;
  };
  const snippet = e => {
    if (e.matches('div.math, mjx-container') || e.querySelector('mjx-container')) { return tex(e); }
    const lines = (e.innerText || e.textContent).split('\n');
    return lines.reduce((a, b) => (b.length > a.length ? b : a), '');
  };
  const sel = 'pre, div.cell_output, div.cell_output > div.output, div.math, mjx-container[display="true"]';
  const boxes = [...article.querySelectorAll(sel)].filter(e => e.clientWidth > 0);
  const wide = boxes.filter(e => e.scrollWidth > e.clientWidth + 1);
  const inner = wide.filter(e => !wide.some(o => o !== e && e.contains(o)));
  const outputs = [...article.querySelectorAll('div.cell_output pre, div.cell_output div.output.text_plain')]
    .filter(e => !e.querySelector('pre'))
    .map(e => ({where: where(e), kind: kind(e), text: e.textContent}));
  // TeX in a link: raw (a backslash or a dollar sign), or typeset by MathJax (only on pages that load it)
  const links = [...document.querySelectorAll('a')]
    .filter(a => /[\\$]/.test(a.textContent) || a.querySelector('.math, mjx-container'))
    .map(a => ({text: a.textContent.trim(), href: a.getAttribute('href') || ''}));
  const blurry = [...article.querySelectorAll('img')]
    .filter(i => i.clientWidth > 0 && i.naturalWidth > 0 && !/\.svg($|\?)|^data:image\/svg/.test(i.src))
    .filter(i => i.naturalWidth < 1.9 * i.clientWidth)
    .map(i => ({where: where(i), alt: (i.alt || '').slice(0, 80), natural: i.naturalWidth, shown: i.clientWidth}));
  return {
    blurry: blurry,
    wide: inner.map(e => ({where: where(e), kind: kind(e), content: e.scrollWidth, box: e.clientWidth,
                           snippet: snippet(e).trim().slice(0, 120)})),
    outputs: outputs,
    links: links,
  };
}"""

# At a phone's width: how far the page scrolls sideways, and the outermost visible elements that stick out.
SIDEWAYS = r"""() => {
  const w = window.innerWidth;
  const out = [];
  const walk = e => {
    for (const c of e.children) {
      const r = c.getBoundingClientRect();
      const style = getComputedStyle(c);
      if (r.width > 0 && r.right > w + 1 && style.visibility !== 'hidden' && style.position !== 'fixed') {
        const s = c.closest('section[id]');
        out.push({kind: c.tagName.toLowerCase() + [...c.classList].slice(0, 3).map(x => '.' + x).join(''),
                  where: s ? '#' + s.id : '(top)', right: Math.round(r.right),
                  snippet: (c.innerText || '').split('\n')[0].trim().slice(0, 80)});
        if (out.length < 40) { walk(c); }
      } else if (out.length < 40) { walk(c); }
    }
  };
  walk(document.body);
  return {scroll: document.documentElement.scrollWidth, width: w, sticking_out: out.slice(-8)};
}"""

_measured: dict[tuple[str, int], dict] = {}


def measure(server, browser, name: str, width: int) -> dict:
    """Open a page at a window ``width`` wide (once per page and width) and measure its layout; with
    FILTERBOOK_SCREENSHOTS set, save a full-page screenshot of it."""
    if (name, width) not in _measured:
        page, _ = open_page(browser, f"{server}/{name}", width=width, height=1600 if width == DESKTOP else 844)
        page.wait_for_load_state("networkidle")
        if "widgets.slider(" in source_of(name) and page.locator(".widget-vbox").count():
            page.locator(".widget-vbox img").first.wait_for(state="visible", timeout=30_000)
        page.evaluate(SETTLE)
        result = page.evaluate(MEASURE if width == DESKTOP else SIDEWAYS)
        if SCREENSHOTS:
            folder = Path(SCREENSHOTS)
            folder.mkdir(parents=True, exist_ok=True)
            stem = name.removesuffix(".html").replace("/", "_")
            page.screenshot(path=str(folder / f"{stem}-{width}.png"), full_page=True)
        page.close()
        _measured[name, width] = result
    return _measured[name, width]


def text_table_columns(text: str, rows: int = 3) -> list[int]:
    """Character positions where a printed text table aligns its columns: positions inside a run of two or more
    spaces between non-blank characters, shared by at least ``rows`` lines of ``text``. Empty for prose, code,
    tracebacks and arrays printed by numpy or torch (single spaces)."""
    count: dict[int, int] = {}
    for line in text.expandtabs().splitlines():
        for gap in re.finditer(r"(?<=\S) {2,}(?=\S)", line):
            for pos in range(gap.start(), gap.end()):
                count[pos] = count.get(pos, 0) + 1
    return sorted(pos for pos, n in count.items() if n >= rows)


def test_text_table_detector():
    table = "name     value   rate\nalpha    0.1     3\nbeta     12.5    4\n"
    assert text_table_columns(table)
    assert text_table_columns("x  = 1\nyy = 2\n") == []                      # two lines: not a table
    assert text_table_columns("tensor([[ 1.0000, -0.5000],\n        [ 0.2500,  1.0000],\n"
                              "        [ 3.0000,  2.0000]])") == []           # leading indents, single gaps
    assert text_table_columns("a sentence  with a double space\nand another line  here\nand a third  one") == []
    assert text_table_columns("step  loss\n0     1.0\n10    0.5\n20    0.25\n") == [2, 3, 4, 5]


def fmt(items: list[dict], keys: list[str]) -> str:
    return "\n".join("  " + " | ".join(str(item[k]) for k in keys) for item in items)


@pytest.mark.parametrize("name", book_pages())
def test_nothing_is_wider_than_its_box(server, browser, name):
    wide = measure(server, browser, name, DESKTOP)["wide"]
    assert wide == [], (f"{name} at {DESKTOP} px: {len(wide)} boxes hold content wider than the box "
                        f"(section | element | content px | box px | widest line):\n"
                        + fmt(wide, ["where", "kind", "content", "box", "snippet"]))


@pytest.mark.parametrize("name", book_pages())
def test_no_output_is_a_printed_text_table(server, browser, name):
    outputs = measure(server, browser, name, DESKTOP)["outputs"]
    tables = [dict(o, snippet=" / ".join(o["text"].strip().splitlines()[:3])[:160])
              for o in outputs if text_table_columns(o["text"])]
    assert tables == [], (f"{name}: {len(tables)} outputs are tables printed as text (use filterlib.Table as the "
                          f"cell's last expression):\n" + fmt(tables, ["where", "kind", "snippet"]))


@pytest.mark.parametrize("name", book_pages())
def test_link_texts_are_plain_text(server, browser, name):
    links = measure(server, browser, name, DESKTOP)["links"]
    assert links == [], (f"{name}: {len(links)} link texts show TeX (a backslash, a $ or typeset math; give the link "
                         f"plain text or the title Unicode):\n" + fmt(links, ["text", "href"]))


@pytest.mark.parametrize("name", book_pages())
def test_figures_are_sharp_on_high_density_screens(server, browser, name):
    """Every PNG figure and widget frame has at least about 2 image pixels per CSS pixel it is shown at (the
    chapters' set-up cell selects IPython's 'retina' figure format; filterlib.widgets renders frames at 2x)."""
    blurry = measure(server, browser, name, DESKTOP)["blurry"]
    assert blurry == [], (f"{name}: {len(blurry)} images have fewer than 2 pixels per displayed pixel "
                          f"(section | alt text | image px | shown px):\n"
                          + fmt(blurry, ["where", "alt", "natural", "shown"]))


@pytest.mark.parametrize("name", book_pages())
def test_phone_width_page_does_not_scroll_sideways(server, browser, name):
    m = measure(server, browser, name, PHONE)
    assert m["scroll"] <= m["width"], (f"{name} at {PHONE} px scrolls sideways ({m['scroll']} px wide); "
                                       f"elements sticking out (element | section | right edge px | text):\n"
                                       + fmt(m["sticking_out"], ["kind", "where", "right", "snippet"]))



# ---------------------------------------------------------------------------------------------------------------
# Accessibility: axe-core's WCAG 2.0/2.1 A and AA rules, alternative texts, MathML, sliders by keyboard
# ---------------------------------------------------------------------------------------------------------------
AXE = ROOT / "vendor" / "axe" / "axe.min.js"
STATEMENT = ROOT / "chapters" / "accessibility.md"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

RUN_AXE = """async tags => {
  const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
  return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, count: v.nodes.length,
    nodes: v.nodes.slice(0, 4).map(n => n.target.join(' ') + ' :: ' + n.html.slice(0, 90)).join(' || ')}));
}"""

IMAGES = r"""() => [...document.querySelectorAll('img')].filter(i => !i.closest('[hidden], template')).map(i => {
  const s = i.closest('section[id]');
  return {alt: i.getAttribute('alt'), src: (i.getAttribute('src') || '').slice(0, 60),
          article: !!i.closest('article'), where: s ? '#' + s.id : '(top)'};
})"""


def documented_exceptions() -> set[str]:
    """The axe-core rule ids the statement allows: the list items ("- `rule-id` ...") of its section "Exceptions
    owned by the theme". Each must say why only the theme can fix it."""
    text = STATEMENT.read_text()
    section = re.search(r"^## Exceptions owned by the theme\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert section, f"{STATEMENT.name} has no section 'Exceptions owned by the theme'"
    return set(re.findall(r"^- `([a-z0-9-]+)`", section.group(1), re.M))


def settled(page):
    """Wait until MathJax has typeset the page and every slider shows its figure; open every collapsed block."""
    page.wait_for_load_state("networkidle")
    if page.locator(".widget-vbox").count():
        page.locator(".widget-vbox img").first.wait_for(state="visible", timeout=30_000)
    page.evaluate(SETTLE)


def path_like(alt: str) -> bool:
    return bool(re.search(r"\.(png|jpe?g|gif|svg|webp)\b|_images/|^[\w./\\-]+$", alt.strip()))


def real_alt(image: dict) -> bool:
    """An alt text that says what an image shows: in the text at least five words, elsewhere (the theme's logos) at
    least two or empty (decorative); never a file name."""
    alt = image["alt"]
    if alt is None:
        return False
    if alt == "" and not image["article"]:
        return True
    return not path_like(alt) and len(alt.split()) >= (5 if image["article"] else 2)


def test_alt_text_rules():
    assert not real_alt({"alt": "../_images/abc.png", "article": True})
    assert not real_alt({"alt": "figure_1", "article": True}) and not real_alt({"alt": None, "article": False})
    assert not real_alt({"alt": "A plot of loss", "article": True}) and not real_alt({"alt": "", "article": True})
    assert real_alt({"alt": "Median log10 distance against the step for four laws.", "article": True})
    assert real_alt({"alt": "Colab logo", "article": False}) and real_alt({"alt": "", "article": False})


def test_statement_exceptions_are_rule_ids_with_reasons():
    text = STATEMENT.read_text()
    section = re.search(r"^## Exceptions owned by the theme\n(.*?)(?=^## |\Z)", text, re.S | re.M).group(1)
    for item in re.findall(r"^- `[a-z0-9-]+`.*$", section, re.M):
        assert len(item.split()) >= 8, f"an exception without its reason: {item}"


@pytest.mark.parametrize("mode", ["light", "dark"])
@pytest.mark.parametrize("name", book_pages())
def test_axe_finds_no_wcag_violation(server, browser, name, mode):
    """axe-core's WCAG 2.0/2.1 A and AA rules on the settled page (hidden code and solutions opened), in the theme's
    light or dark mode (the reader's system setting): no violation but the statement's documented exceptions."""
    page, log = open_page(browser, f"{server}/{name}", color_scheme=mode)
    settled(page)
    assert page.evaluate("document.documentElement.dataset.theme") == mode
    # Colours as they settle: no transition caught halfway (the theme fades link colours), no hover.
    page.add_style_tag(content="*, *::before, *::after { transition: none !important; animation: none !important; }")
    page.mouse.move(1279, 1599)
    page.wait_for_timeout(300)
    page.add_script_tag(path=str(AXE))
    assert page.evaluate("axe.version").startswith("4.14")
    violations = [v for v in page.evaluate(RUN_AXE, WCAG_TAGS) if v["id"] not in documented_exceptions()]
    page.close()
    assert violations == [], (f"{name} ({mode} mode): {sum(v['count'] for v in violations)} WCAG violations "
                              f"(rule | impact | nodes | first nodes):\n"
                              + fmt(violations, ["id", "impact", "count", "nodes"]))
    assert log["errors"] == [], log["errors"]


@pytest.mark.parametrize("name", book_pages())
def test_every_image_has_real_alt_text_and_every_equation_mathml(server, browser, name):
    """Every <img>: an alt text that is not a file name; in the text (figures, slider frames) at least five words
    (outside it, the theme's logos: at least two, or empty for a decorative one). Every typeset equation carries
    MathJax's assistive MathML, which screen readers read."""
    page, _ = open_page(browser, f"{server}/{name}")
    settled(page)
    images = page.evaluate(IMAGES)
    unread = page.evaluate("() => [...document.querySelectorAll('mjx-container')]"
                           ".filter(m => !m.querySelector('mjx-assistive-mml math')).length")
    page.close()
    bad = [dict(i, alt=i["alt"] if i["alt"] is not None else "(no alt)") for i in images if not real_alt(i)]
    assert bad == [], (f"{name}: {len(bad)} images without a real alt text (section | alt | src):\n"
                       + fmt(bad, ["where", "alt", "src"]))
    assert unread == 0, f"{name}: {unread} equations without assistive MathML"


SLIDER_STATE = """i => {
  const box = document.querySelectorAll('.widget-vbox')[i];
  const handle = box.querySelector('.noUi-handle');
  const img = box.querySelector(':scope > .widget-box img');
  const label = box.querySelector('.widget-label');
  const src = img ? img.getAttribute('src') : '';
  return {label: label ? label.textContent.trim() : '', name: handle.getAttribute('aria-label') || '',
          now: Number(handle.getAttribute('aria-valuenow')), max: Number(handle.getAttribute('aria-valuemax')),
          valuetext: handle.getAttribute('aria-valuetext') || '',
          readout: box.querySelector('.widget-readout').textContent.trim(),
          alt: img ? img.getAttribute('alt') || '' : '', figure: src.length + ':' + src.slice(-48),
          focused: document.activeElement === handle};
}"""
SLIDER_MOVED = """([i, before]) => {
  const box = document.querySelectorAll('.widget-vbox')[i];
  const handle = box.querySelector('.noUi-handle');
  const img = box.querySelector(':scope > .widget-box img');
  const readout = box.querySelector('.widget-readout').textContent.trim();
  return readout !== before && handle.getAttribute('aria-valuetext') === readout && img
         && (img.getAttribute('alt') || '').includes(readout);
}"""


@pytest.mark.parametrize("name", [f"{stem}.html" for stem in widget_chapters()])
def test_sliders_work_by_keyboard_and_announce_their_value(server, browser, name):
    """Each slider, with the arrow keys only: its handle is named after the parameter and announces the value the
    readout shows; every step right shows a new figure, whose alt text starts with "At {name} = {value}:"."""
    page, log = open_page(browser, f"{server}/chapters/{name}")
    settled(page)
    for i in range(page.locator(".widget-vbox").count()):
        page.locator(".widget-vbox").nth(i).scroll_into_view_if_needed()
        state = page.evaluate(SLIDER_STATE, i)
        assert state["label"] and state["name"] == state["label"], f"slider {i} on {name}: no accessible name"
        page.locator(".widget-vbox").nth(i).locator(".noUi-handle").first.focus()
        for _ in range(int(state["max"])):
            page.keyboard.press("ArrowLeft")
        page.wait_for_function(f"() => ({SLIDER_STATE})({i}).now === 0")
        page.wait_for_timeout(200)
        seen = [page.evaluate(SLIDER_STATE, i)]
        for _ in range(int(state["max"])):
            page.keyboard.press("ArrowRight")
            page.wait_for_function(SLIDER_MOVED, arg=[i, seen[-1]["readout"]], timeout=10_000)
            seen.append(page.evaluate(SLIDER_STATE, i))
        where = f"slider {i} ({state['label']}) on {name}"
        assert all(s["focused"] for s in seen), f"{where}: the handle lost the keyboard focus"
        assert len({s["readout"] for s in seen}) == len(seen) == int(state["max"]) + 1, f"{where}: {seen}"
        for s in seen:
            assert s["valuetext"] == s["readout"], f"{where} announces {s['valuetext']!r}, shows {s['readout']!r}"
            assert s["alt"].startswith(f"At {s['label']} = {s['readout']}: "), f"{where}: frame alt {s['alt']!r}"
            assert len(s["alt"].split()) >= 8, f"{where}: frame alt {s['alt']!r} does not say what it shows"
        figures = [s["figure"] for s in seen]
        assert all(a != b for a, b in zip(figures, figures[1:])), f"{where}: a step did not change the figure"
    assert off_host(log["requests"]) == [] and log["failed"] == [] and log["errors"] == [], log
    page.close()


def test_axe_is_not_shipped_in_the_book(built_book):
    """axe-core is vendored for these tests only: the book's _static/ does not carry it."""
    assert (built_book / "_static" / "widgets" / "embed-amd.js").exists()
    assert not (built_book / "_static" / "axe").exists()
