"""Shared fixtures: deterministic settings, and the built book for the HTML and browser tests."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ["FILTERLIB_PROGRESS"] = "0"
os.environ.setdefault("FILTERLIB_DEVICE", "cpu")


def widget_chapters() -> list[str]:
    """Chapters whose source builds a kernel-free slider (their pages must embed widget state)."""
    return sorted(p.stem for p in (ROOT / "chapters").glob("*.md") if "widgets.slider(" in p.read_text())


@pytest.fixture(scope="session")
def built_book() -> Path:
    """_build/html, built (or confirmed up to date) by the same script as `make book`."""
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "build_book.py")], cwd=ROOT,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail("the book build failed (-W: any warning or cell error fails it):\n"
                    + (proc.stdout + proc.stderr)[-6000:])
    return ROOT / "_build" / "html"
