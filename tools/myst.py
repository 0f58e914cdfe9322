"""What the tools and tests need to know about a MyST page: one place (tools/make_student.py, tools/install_cell.py,
tests/conftest.py)."""
from __future__ import annotations


def is_notebook(text: str) -> bool:
    """A page is a notebook (MyST-NB executes it) when its front matter has the jupytext MyST header."""
    head = text.split("---", 2)
    return text.startswith("---") and len(head) > 2 and "jupytext:" in head[1] and "format_name: myst" in head[1]
