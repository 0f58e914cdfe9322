"""Sphinx extension for filterbook: keep the static pages free of dead and duplicated scripts.

Jupyter Book 1 always loads sphinx-thebe, which adds an inline script declaring ``const THEBE_JS_URL``
(pointing at unpkg.com) once per read pass, so a page can get it twice and the browser throws
"Identifier 'THEBE_JS_URL' has already been declared". This book does not use Thebe (launch_buttons.thebe is
false: live code runs in Colab or Jupyter), so its scripts are dropped, and any other duplicate is removed.
"""
from __future__ import annotations


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


def setup(app):
    app.connect("html-page-context", _clean_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
