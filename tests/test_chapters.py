"""Every chapter notebook executes on a fresh kernel, and its .ipynb pair says what its .md says.

The fresh-kernel execution is the book build's (conftest.executed_chapter): MyST-NB executes each chapter in a
new kernel (or reuses that execution from its cache while the chapter's code, filterlib, the lock file, the
config, vendor/ and the device/dtype settings are unchanged: tools/build_book.py). The tests read it instead of
executing every chapter a second time.
"""
from __future__ import annotations

import re

import jupytext
import pytest

from conftest import code_cells, is_notebook, toc_files

NOTEBOOKS = [p for p in toc_files() if is_notebook(p)]


def test_toc_lists_existing_files_and_some_notebooks():
    assert all(p.exists() for p in toc_files()), [p for p in toc_files() if not p.exists()]
    assert NOTEBOOKS, "no chapter notebooks found"


@pytest.mark.book
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_executes_on_a_fresh_kernel(executed_chapter, path):
    nb = executed_chapter(path)                    # today's code cells, executed by the build
    cells = code_cells(nb)
    # one fresh kernel ran every code cell, in order, once: execution counts 1, 2, ..., n
    assert [c.get("execution_count") for c in cells] == list(range(1, len(cells) + 1)), \
        f"{path.name}: not every cell was executed, in order, on one fresh kernel"
    errors = [o for c in cells for o in c.get("outputs", [])
              if o.get("output_type") == "error" or (o.get("output_type") == "stream" and o.get("name") == "stderr")]
    assert not errors, errors


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_ipynb_pair_matches_md(path):
    pair = path.with_suffix(".ipynb")
    assert pair.exists(), f"{pair.name} is missing: run `make pair`"
    md, ipynb = jupytext.read(path), jupytext.read(pair)
    strip = lambda nb: [(c.cell_type, c.source.strip(), c.metadata.get("tags", [])) for c in nb.cells]  # noqa: E731
    assert strip(md) == strip(ipynb), f"{pair.name} differs from {path.name}: run `make pair`"
    assert all(not c.get("outputs") for c in ipynb.cells if c.cell_type == "code"), "commit .ipynb without outputs"


PROOF_BLOCK = re.compile(r"^(`{3,}|:{3,})\{prf:(?P<kind>\w+)\}[ \t]*(?P<title>.*)$")


@pytest.mark.parametrize("path", toc_files(), ids=lambda p: p.stem)
def test_one_numbering_the_papers_numbers_or_the_books_own(path):
    """Every theorem-like block carries its number in its title, not sphinx-proof's counter: the paper's
    (e.g. "3.2 (Linear convergence …)", shown as "Theorem 3.2 (…)") or the book's own "B.n"; links to them carry
    their own text (a bare {prf:ref} to an unnumbered block would read just "Theorem")."""
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        m = PROOF_BLOCK.match(line)
        if not m or m.group("kind") == "proof":
            continue
        assert re.fullmatch(r"(\d+\.\d+|B\.\d+) \(.+\)", m.group("title")), (path.name, i + 1, line)
        options = []
        for option in lines[i + 1:]:
            if not option.startswith(":"):
                break
            options.append(option)
        assert ":nonumber:" in options, (path.name, i + 1, line)
    bare = re.findall(r"\{prf:ref\}`[^<`]*`", path.read_text())
    assert not bare, f"{path.name}: links without their own text: {bare}"


def test_the_books_own_numbers_are_unique_across_the_book():
    seen = {}
    for path in toc_files():
        for line in path.read_text().splitlines():
            m = PROOF_BLOCK.match(line)
            if m and m.group("kind") != "proof" and m.group("title").startswith("B."):
                number = m.group("title").split()[0]
                assert number not in seen, f"{number} in {path.name} and {seen.get(number)}"
                seen[number] = path.name
    assert seen, "no block of the book's own"
