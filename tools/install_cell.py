"""The set-up cell at the top of every chapter, generated from one template (run by `make pair`).

A chapter opened from its launch button (Colab) or in any Jupyter server that lacks this book's library must
install it before `import filterlib`. Every chapter therefore starts with the same code cell, made here from
TEMPLATE and two settings of the project, so that a fork changes one value and everything follows:

* the repository, ``repository.url`` in _config.yml (the launch buttons use the same value), and
* the book's version, ``[project] version`` in pyproject.toml: the cell installs the distribution ``filterbook``
  from the repository at the tag ``v<version>``.

The cell does nothing where ``filterlib`` is importable (the book build, `make lab`, the tests). The environment
variable ``FILTERBOOK_SOURCE`` overrides where it installs from (any pip requirement: a local folder, a wheel, a
fork's git URL). On Colab it also turns on the custom widget manager, which ipywidgets 8 needs there. The
cell carries the ``remove-cell`` tag, so the HTML book does not show it.

The README's "run it online" link follows the same setting: ``python tools/install_cell.py`` writes the cell into
every chapter notebook's ``.md`` (replacing an older copy) and the link into README.md (between its
``<!-- run-online -->`` markers); ``--check`` only reports what differs, with exit code 1.
"""
from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from myst import is_notebook  # noqa: E402  (tools/myst.py)

ROOT = Path(__file__).resolve().parent.parent
MARKER = "# filterbook set-up"

TEMPLATE = '''\
{marker}: installs this book's library where it is missing (Colab, Jupyter),
# and draws figures sharp on high-density screens.
# Made by `make pair` from tools/install_cell.py; the HTML book does not show it.
import importlib
import importlib.util
import os
import subprocess
import sys

REPOSITORY = "{url}"
VERSION = "{version}"
if importlib.util.find_spec("filterlib") is None:
    default = f"filterbook @ git+{{REPOSITORY}}@v{{VERSION}}"
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    subprocess.run(pip + [os.environ.get("FILTERBOOK_SOURCE", default)], check=True)
    importlib.invalidate_caches()
if "google.colab" in sys.modules:
    from google.colab import output

    output.enable_custom_widget_manager()
try:  # figures sharp on high-density (retina) screens: PNG at 2x, shown at 1x size
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    set_matplotlib_formats("retina")
except ImportError:  # not in IPython
    pass'''

CELL = re.compile(r"```\{code-cell\} ipython3\n:tags: \[remove-cell\]\n\n" + re.escape(MARKER) + r".*?\n```\n\n",
                  re.S)


RUN_ONLINE = re.compile(r"<!-- run-online -->.*?<!-- /run-online -->", re.S)
FIRST_CHAPTER = "chapters/gd_gaussian.ipynb"


def settings(root: Path = ROOT) -> dict:
    """The repository URL and branch (from _config.yml, as the launch buttons) and the book's version (from
    pyproject.toml)."""
    config = yaml.safe_load((root / "_config.yml").read_text())
    url = str(config["repository"]["url"]).rstrip("/")
    branch = str(config["repository"].get("branch", "main"))
    version = tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]
    return {"url": url, "branch": branch, "version": version}


def run_online(root: Path = ROOT) -> str:
    """The README's link to the first chapter on Colab, built as the launch buttons build theirs."""
    s = settings(root)
    colab = s["url"].replace("https://github.com/", "https://colab.research.google.com/github/", 1)
    return (f"<!-- run-online -->\nRun it online: [the first chapter in Colab]({colab}/blob/{s['branch']}/"
            f"{FIRST_CHAPTER}) (every chapter has a launch button).\n<!-- /run-online -->")


def source(root: Path = ROOT) -> str:
    """The cell's code, for this project's settings."""
    s = settings(root)
    return TEMPLATE.format(marker=MARKER, url=s["url"], version=s["version"])


def block(root: Path = ROOT) -> str:
    """The cell as a MyST code cell, tagged remove-cell."""
    return f"```{{code-cell}} ipython3\n:tags: [remove-cell]\n\n{source(root)}\n```\n\n"


def with_cell(text: str, root: Path = ROOT) -> str:
    """A chapter's MyST text with the current cell right after its front matter (an older copy is replaced)."""
    text = CELL.sub("", text, count=1)
    if not text.startswith("---\n"):
        raise ValueError("a chapter notebook must start with its jupytext front matter")
    end = text.index("\n---\n", 4) + len("\n---\n")
    return text[:end] + "\n" + block(root) + text[end:].lstrip("\n")


def chapter_notebooks(root: Path = ROOT) -> list[Path]:
    """Every chapter whose front matter makes it a MyST notebook (the pages with code)."""
    out = []
    for path in sorted((root / "chapters").glob("*.md")):
        if is_notebook(path.read_text()):
            out.append(path)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the generated set-up cell into every chapter notebook.")
    parser.add_argument("--check", action="store_true", help="only report chapters whose cell is missing or old")
    args = parser.parse_args(argv)
    stale = []
    for path in chapter_notebooks():
        text = path.read_text()
        new = with_cell(text)
        if new != text:
            stale.append(path.name)
            if not args.check:
                path.write_text(new)
    readme = ROOT / "README.md"
    text = readme.read_text()
    if not RUN_ONLINE.search(text):
        raise SystemExit("install_cell: README.md has no <!-- run-online --> … <!-- /run-online --> markers")
    new = RUN_ONLINE.sub(lambda _: run_online(), text, count=1)
    if new != text:
        stale.append(readme.name)
        if not args.check:
            readme.write_text(new)
    verb = "differ from the template" if args.check else "updated"
    print(f"install_cell: {len(stale)} file(s) {verb}" + (f": {', '.join(stale)}" if stale else ""))
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
