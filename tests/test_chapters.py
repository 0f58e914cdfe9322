"""Every chapter notebook executes on a fresh kernel, and its .ipynb pair says what its .md says."""
from __future__ import annotations

import os
from pathlib import Path

import jupytext
import nbclient
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def toc_files() -> list[Path]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    names = [toc["root"]]
    for part in toc.get("parts", []):
        names += [c["file"] for c in part["chapters"]]
    return [ROOT / f"{name}.md" for name in names]


def is_notebook(path: Path) -> bool:
    """A chapter is a notebook when its front matter has the jupytext header (MyST-NB executes it)."""
    head = path.read_text().split("---", 2)
    return path.read_text().startswith("---") and "jupytext:" in head[1] and "format_name: myst" in head[1]


NOTEBOOKS = [p for p in toc_files() if is_notebook(p)]


def test_toc_lists_existing_files_and_some_notebooks():
    assert all(p.exists() for p in toc_files()), [p for p in toc_files() if not p.exists()]
    assert NOTEBOOKS, "no chapter notebooks found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_executes_on_a_fresh_kernel(path):
    nb = jupytext.read(path)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    os.environ["FILTERLIB_PROGRESS"] = "0"
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
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
