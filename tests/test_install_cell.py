"""tools/install_cell.py: the generated set-up cell that lets a chapter run where filterlib is not installed.

* Every chapter notebook starts with the same cell, byte for byte the template's, hidden from the HTML.
* The cell and the launch buttons derive from one repository setting (``repository.url`` in _config.yml).
* The launch-button path, offline: a fresh environment that has torch but not this package executes a chapter's
  ``.ipynb``; its set-up cell installs the package (from a local wheel, through ``FILTERBOOK_SOURCE``) and the
  chapter runs to the end.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("install_cell", ROOT / "tools" / "install_cell.py")
install_cell = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(install_cell)

CHAPTERS = install_cell.chapter_notebooks()


def first_code_cell(path: Path):
    return next(c for c in jupytext.read(path).cells if c.cell_type == "code")


def test_every_chapter_notebook_starts_with_the_template_cell():
    assert CHAPTERS, "no chapter notebooks found"
    for md in CHAPTERS:
        for path in (md, md.with_suffix(".ipynb")):
            cell = first_code_cell(path)
            assert cell.source == install_cell.source(), f"{path.name}: run `make pair`"
            assert cell.metadata.get("tags") == ["remove-cell"], f"{path.name}: the set-up cell must be hidden"
    assert install_cell.main(["--check"]) == 0


def test_cell_and_launch_buttons_follow_the_one_repository_setting(tmp_path):
    for name in ("_config.yml", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    assert 'REPOSITORY = "https://github.com/filterbook/filterbook"' in install_cell.source(tmp_path)
    config = (tmp_path / "_config.yml").read_text()
    (tmp_path / "_config.yml").write_text(config.replace("https://github.com/filterbook/filterbook",
                                                         "https://github.com/someone/fork"))
    (tmp_path / "pyproject.toml").write_text((tmp_path / "pyproject.toml").read_text().replace(
        'version = "', 'version = "9', 1))
    cell = install_cell.source(tmp_path)
    assert 'REPOSITORY = "https://github.com/someone/fork"' in cell and 'VERSION = "9' in cell
    assert "filterbook/filterbook" not in cell
    link = install_cell.run_online(tmp_path)
    assert "https://colab.research.google.com/github/someone/fork/blob/main/chapters/gd_gaussian.ipynb" in link


def test_readme_links_to_the_repository_setting():
    assert install_cell.run_online() in (ROOT / "README.md").read_text(), "run `make pair`"


@pytest.mark.book
def test_launch_buttons_use_the_repository_setting(built_book):
    url = install_cell.settings()["url"]
    page = (built_book / "chapters" / "gd_gaussian.html").read_text()
    colab = url.replace("https://github.com/", "https://colab.research.google.com/github/")
    assert f"{colab}/blob/" in page and "chapters/gd_gaussian.ipynb" in page


def test_a_chapter_runs_where_the_package_is_missing(tmp_path):
    """A new environment sees this project's packages (torch, Jupyter) but not filterlib, as Colab has torch and
    not this book; the chapter's first cell installs the package from FILTERBOOK_SOURCE, then every cell runs."""
    src, wheels = tmp_path / "src", tmp_path / "wheels"                # build from a copy: nothing is written
    shutil.copytree(ROOT / "filterlib", src / "filterlib", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(wheels), str(src)], check=True, capture_output=True)
    wheel = next(wheels.glob("*.whl"))
    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    # the project's packages are visible (a path line in a .pth), but not its editable install of filterlib
    Path(site, "project-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: val for k, val in os.environ.items() if k != "PYTHONPATH"}
    env.update(FILTERBOOK_SOURCE=str(wheel), FILTERLIB_PROGRESS="0", FILTERLIB_DEVICE="cpu")
    probe = subprocess.run([str(python), "-c", "import filterlib"], cwd=tmp_path, env=env, capture_output=True)
    assert probe.returncode != 0, "filterlib must be missing from the new environment before the chapter runs"
    chapter = ROOT / "chapters" / "gd_gaussian.ipynb"
    script = textwrap.dedent(f"""
        import nbclient, nbformat
        nb = nbformat.read({str(chapter)!r}, as_version=4)
        nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                resources={{"metadata": {{"path": {str(tmp_path)!r}}}}}).execute()
        bad = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
               if o.get("output_type") == "error" or o.get("name") == "stderr"]
        assert not bad, bad
        import filterlib
        print("ran", sum(c.cell_type == "code" for c in nb.cells), "cells with", filterlib.__file__)
    """)
    run = subprocess.run([str(python), "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert str(env_dir) in run.stdout, run.stdout                  # installed into the new environment
