"""Build the book into _build/html (what `make book` runs); exits non-zero on any warning or cell error.

The jupyter-cache behind `execute_notebooks: cache` keys only on a notebook's code cells. A change to
filterlib (or to the pinned environment, the book configuration or the vendored JavaScript) would therefore
leave stale outputs, or stale static files, in the book. This script fingerprints those inputs and wipes
_build (cache included) whenever the fingerprint differs from the one of the last successful build.

The chapters also read two settings from the environment (filterlib/config.py): FILTERLIB_DEVICE and
FILTERLIB_DTYPE. They are part of the fingerprint (the device resolved, so `auto` and `cpu` agree on a machine
without CUDA): outputs computed on a GPU, or in float64, are never reused for a CPU float32 build. The tests rely
on this: tests/test_chapters.py checks the build's executed notebooks instead of executing the chapters again.

`build_book.py DIR` builds another book on the same filterlib instead, into DIR/_build (`make student` builds
the student edition, _student/, this way); its fingerprint adds DIR's own configuration, vendor/ and tools/sphinx.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "_build"
STAMP = BUILD / "filterlib.fingerprint"
INPUTS = ["filterlib", "vendor", "tools/sphinx", "_config.yml", "requirements.lock", "pyproject.toml"]


def fingerprint(root: Path = ROOT) -> str:
    """sha256 over the path and bytes of every file that can change what the executed chapters show."""
    h = hashlib.sha256()
    for name in INPUTS:
        base = root / name
        files = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else [base]
        for path in files:
            if "__pycache__" in path.parts or not path.exists():
                continue
            h.update(path.relative_to(root).as_posix().encode() + b"\0")
            h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def settings() -> str:
    """The environment settings the chapters' outputs depend on (see filterlib/config.py), with `auto` resolved."""
    device = os.environ.get("FILTERLIB_DEVICE", "auto").strip().lower()
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = os.environ.get("FILTERLIB_DTYPE", "float32").strip().lower()
    return f"FILTERLIB_DEVICE={device} FILTERLIB_DTYPE={dtype}"


def current(book: Path = ROOT) -> str:
    """The fingerprint a build of ``book`` made now would stamp: its inputs' bytes and the settings."""
    value = hashlib.sha256((fingerprint() + settings()).encode()).hexdigest()
    if book != ROOT:          # another book on the same filterlib (the student edition): its own config too
        value = hashlib.sha256((value + fingerprint(book)).encode()).hexdigest()
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the book (-W: any warning or cell error fails).")
    parser.add_argument("book", nargs="?", default=str(ROOT),
                        help="the book's root folder (default: this repository; `make student` passes _student)")
    book = Path(parser.parse_args(argv).book).resolve()
    build, stamp = book / "_build", book / "_build" / "filterlib.fingerprint"
    start = time.time()
    now = current(book)
    if build.exists() and (not stamp.exists() or stamp.read_text().strip() != now):
        print("build_book: filterlib, the environment, the config, vendor/ or the device/dtype settings changed: "
              "clearing _build and its execution cache", flush=True)
        shutil.rmtree(build)
    env = dict(os.environ, FILTERLIB_PROGRESS="0", PYDEVD_DISABLE_FILE_VALIDATION="1")
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", "-W", "-n", "--keep-going", str(book)]
    rc = subprocess.call(cmd, env=env, cwd=book)
    if rc == 0:
        stamp.write_text(now + "\n")
    print(f"build_book: {'ok' if rc == 0 else 'FAILED'} in {time.time() - start:.1f} s", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
