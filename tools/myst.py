"""What the tools and tests need to know about the book's MyST pages: one place (tools/make_student.py,
tools/install_cell.py, tests/conftest.py)."""
from __future__ import annotations


def is_notebook(text: str) -> bool:
    """A page is a notebook (MyST-NB executes it) when its front matter has the jupytext MyST header."""
    head = text.split("---", 2)
    return text.startswith("---") and len(head) > 2 and "jupytext:" in head[1] and "format_name: myst" in head[1]


def toc_pages(toc: dict) -> list[str]:
    """The pages of a parsed _toc.yml (jb-book format), root first, in book order, as paths without ``.md``."""
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        pages += [c["file"] for c in part.get("chapters", [])]
    return pages
