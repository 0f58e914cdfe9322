"""The demo page in headless Chromium, offline: the kernel-free slider changes the figure, nothing leaves 127.0.0.1.

Drives Debian's chromium (no browser download) with Playwright; `make test` installs chromium when it is missing.
"""
from __future__ import annotations

import functools
import os
import re
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
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


def open_page(browser, url):
    page = browser.new_page(viewport={"width": 1280, "height": 1600})
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
        page.wait_for_selector("mjx-container", timeout=30_000)     # MathJax (vendored) typeset the math
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
