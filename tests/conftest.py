"""Shared fixtures: deterministic settings, the built book, and the build's executed chapters.

Each chapter is executed once per test session, on a fresh kernel: by the book build (`built_book`, the same
script as `make book`, through MyST-NB's jupyter-cache). The chapter tests, the student-notebook test and the
determinism test read that execution (`executed_chapter`) instead of executing the chapters again.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("filterbook_tools_myst", ROOT / "tools" / "myst.py")
_myst = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_myst)
os.environ["FILTERLIB_PROGRESS"] = "0"
os.environ.setdefault("FILTERLIB_DEVICE", "cpu")

_spec = importlib.util.spec_from_file_location("build_book", ROOT / "tools" / "build_book.py")
build_book = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_book)


def widget_chapters() -> list[str]:
    """Chapters whose source builds a kernel-free slider (their pages must embed widget state)."""
    return sorted(p.stem for p in (ROOT / "chapters").glob("*.md") if "widgets.slider(" in p.read_text())


def toc_files() -> list[Path]:
    """The .md file of every page of _toc.yml, in book order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [ROOT / f"{name}.md" for name in _myst.toc_pages(toc)]


def is_notebook(path: Path) -> bool:
    """A chapter is a notebook when its front matter has the jupytext header (MyST-NB executes it): tools/myst.py."""
    return _myst.is_notebook(path.read_text())


def chapter_code(path: Path) -> str:
    """The code of a chapter notebook, its code cells joined (IPython magics and shell lines left out), for tests
    that read chapters' code without running it."""
    import jupytext

    code = "\n".join(c.source for c in jupytext.read(path).cells if c.cell_type == "code")
    return "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))


@pytest.fixture(scope="session")
def built_book() -> Path:
    """_build/html, built (or confirmed up to date) by the same script as `make book`."""
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "build_book.py")], cwd=ROOT,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail("the book build failed (-W: any warning or cell error fails it):\n"
                    + (proc.stdout + proc.stderr)[-6000:])
    return ROOT / "_build" / "html"


def code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


@pytest.fixture(scope="session")
def executed_chapter(built_book):
    """``executed_chapter(path)``: the build's execution of a chapter (_build/jupyter_execute), checked to be the
    execution of the current code: the build's stamp is the fingerprint of today's filterlib, lock file, config,
    vendor/ and device/dtype settings (tools/build_book.py clears the cache when it is not), and the executed code
    cells are those of today's .md, source and tags."""
    import jupytext
    import nbformat

    stamp = ROOT / "_build" / "filterlib.fingerprint"
    assert stamp.read_text().strip() == build_book.current(), "the build is stale: its fingerprint is not today's"

    def load(path: Path):
        executed = ROOT / "_build" / "jupyter_execute" / path.relative_to(ROOT).with_suffix(".ipynb")
        assert executed.exists(), f"the book build wrote no executed notebook for {path.name}"
        nb = nbformat.read(executed, as_version=4)
        source = jupytext.read(path)
        key = lambda cells: [(c.source, c.metadata.get("tags", [])) for c in cells]  # noqa: E731
        assert key(code_cells(nb)) == key(code_cells(source)), f"{executed} is not the execution of today's {path}"
        return nb

    return load
