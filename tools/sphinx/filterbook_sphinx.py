"""Sphinx extension for filterbook: clean scripts, fresh cross-document glue, and the book's layout CSS.

* Jupyter Book 1 always loads sphinx-thebe, which adds an inline script declaring ``const THEBE_JS_URL``
  (pointing at unpkg.com) once per read pass, so a page can get it twice and the browser throws
  "Identifier 'THEBE_JS_URL' has already been declared". This book does not use Thebe (launch_buttons.thebe is
  false: live code runs in Colab or Jupyter), so its scripts are dropped, and any other duplicate is removed.
* A page that pastes values glued in other documents (chapters/scorecard.md: ``{glue:text}`chapter.md::key:s```)
  reads them from the chapters' ``.glue.json`` files when it is written. Sphinx does not know that such a page
  depends on the chapters, so an incremental build that re-executes a chapter would keep the page's old values:
  such pages are re-read whenever any other document changed.
* ``filterbook.css`` (next to this file): tables, code and output boxes that fit the text column.
* Exercises are numbered per chapter (Exercise 1, 2, … on every page), not across the book: Sphinx numbers
  sphinx-exercise's ``exercise`` nodes book-wide (``numfig``), and the book's chapters are not section-numbered
  (their titles carry the paper's theorem numbers). The numbers are reassigned per page right after Sphinx assigns
  them, so the titles, the solutions' "Solution to Exercise n" and {numref} links all agree.
* Accessibility (WCAG 2.1 AA, checked by axe-core in tests/test_browser.py; chapters/accessibility.md): ``templates/``
  overrides two theme components whose accessible names did not contain their visible text (the search button,
  the colour-mode button); each page's body is fixed where the HTML writers miss a rule (a code cell's
  show/hide ``summary`` named "Toggle hidden content" while it shows "Show code cell source"; the bibliography's
  ``role="list"`` whose entries carry the deprecated ``doc-biblioentry`` role instead of ``listitem``); and
  ``filterbook.css`` sets link and text colours with a contrast of at least 4.5:1 in light and dark mode.
  axe-core itself (``vendor/axe/``) is for the tests only and is not copied into the book.
"""
from __future__ import annotations

import re
from pathlib import Path

CSS = "filterbook.css"
TEMPLATES = Path(__file__).parent / "templates"


def _clean_scripts(app, pagename, templatename, context, doctree):
    kept, seen = [], set()
    for js in context.get("script_files", []):
        filename = str(getattr(js, "filename", js) or "")
        body = str(getattr(js, "attributes", {}).get("body", ""))
        if "THEBE_JS_URL" in body or "sphinx-thebe" in filename or "thebe@" in filename:
            continue
        key = (filename, body)
        if key in seen:
            continue
        seen.add(key)
        kept.append(js)
    context["script_files"] = kept


def accessible_body(body: str) -> str:
    """A page body with the fixes of WCAG rules that Sphinx's and myst-nb's HTML writers miss.

    * myst-nb names a hidden cell's toggle ``<summary aria-label="Toggle hidden content">`` while it shows "Show
      code cell source": the name must contain the visible text (WCAG 2.5.3), so the label is dropped and the
      visible text names it.
    * docutils writes a bibliography as ``<div role="list">`` whose entries have ``role="doc-biblioentry"``, a
      role deprecated in DPUB-ARIA 1.1 (and not a list item, so the list has no items): they become ``listitem``.
    """
    body = re.sub(r'<summary aria-label="Toggle hidden content">', "<summary>", body)
    return re.sub(r'(<div class="citation"[^>]*?) role="doc-biblioentry"', r'\1 role="listitem"', body)


def _accessible_page(app, pagename, templatename, context, doctree):
    if isinstance(context.get("body"), str):
        context["body"] = accessible_body(context["body"])


def _glue_pages(env) -> set:
    if not hasattr(env, "filterbook_glue_pages"):
        env.filterbook_glue_pages = set()
    return env.filterbook_glue_pages


def _note_glue_refs(app, doctree):
    """Remember the documents that paste glue from another document (pending glue references)."""
    from myst_nb.ext.glue.utils import PendingGlueReference

    pages = _glue_pages(app.env)
    pages.discard(app.env.docname)
    if any(True for _ in doctree.findall(PendingGlueReference)):
        pages.add(app.env.docname)


def _purge(app, env, docname):
    _glue_pages(env).discard(docname)


def _merge(app, env, docnames, other):
    _glue_pages(env).update(_glue_pages(other) & set(docnames))


def _reread_glue_pages(app, env, added, changed, removed):
    """Re-read (and so rewrite) the pages with cross-document glue whenever another document changed."""
    if not (added or changed or removed):
        return []
    return sorted(d for d in _glue_pages(env) if d in env.found_docs and d not in changed | added)


def _exercises_per_chapter(app, env):
    """Renumber the ``exercise`` figure type from 1 on each page, keeping each page's order."""
    for numbers in env.toc_fignumbers.values():
        exercises = numbers.get("exercise")
        if exercises:
            ordered = sorted(exercises.items(), key=lambda item: item[1])
            numbers["exercise"] = {key: (i,) for i, (key, _) in enumerate(ordered, 1)}
    return []


def _config(app, config):
    """The theme component overrides come first; axe-core (vendor/axe/, tests only) is not copied to _static."""
    config.templates_path.insert(0, str(TEMPLATES))
    config.exclude_patterns.append("axe")


def _add_css(app):
    static = Path(__file__).parent / "static"
    if (static / CSS).exists():
        app.config.html_static_path.append(str(static))
        app.add_css_file(CSS)


def setup(app):
    app.connect("config-inited", _config)
    app.connect("html-page-context", _clean_scripts, priority=900)
    app.connect("html-page-context", _accessible_page)
    app.connect("doctree-read", _note_glue_refs)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    app.connect("env-get-outdated", _reread_glue_pages)
    app.connect("builder-inited", _add_css)
    app.connect("env-get-updated", _exercises_per_chapter, priority=900)     # after Sphinx's own numbering
    return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}
