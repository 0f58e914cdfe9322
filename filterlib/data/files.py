"""A user's images and teacher filter, read from files or arrays for :func:`filterlib.diagnose` and its command line
``python -m filterlib diagnose`` (chapters/diagnose.md).

* :func:`load_images`: images (N, H, W) from a .npy file, an .npz archive or a folder of PNG files;
  :func:`read_images` also says how they were read (format, PNG modes, colour → grayscale conversion, pixel scale).
* :func:`load_teacher`: a teacher filter from a .npy file.
* :func:`as_images`: any array or tensor of images as a checked float64 CPU tensor (N, H, W).

Pickled objects are refused; every error names the file or the parameter. A file is never trusted with memory:
the size an .npy header (also inside an .npz archive) declares, and the pixels of PNG files as float64, are checked
against a limit before anything is allocated (``max_bytes``, default ``FILTERLIB_MAX_BYTES`` or 2 GiB; the command
line's ``--max-bytes``), and Pillow's decompression-bomb guard is kept.
"""
from __future__ import annotations

import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from .. import config

_DTYPE = torch.float64
#: Largest |pixel| (and smallest non-zero largest |pixel|) the diagnosis computes with safely in float64: its
#: constants are sums of products of pixels over many patches, and their squares enter the step caps.
PIXEL_RANGE = (1e-50, 1e50)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError,
                KeyError)
_RAISE = "raise the limit (--max-bytes on the command line, FILTERLIB_MAX_BYTES, or max_bytes= in Python)"


def _size(n: int) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


def _limit(max_bytes) -> int:
    if max_bytes is None:
        return config.max_bytes()
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise ValueError(f"max_bytes must be a positive integer (bytes), got {max_bytes!r}")
    return max_bytes


def as_images(images) -> torch.Tensor:
    """``images`` as a float64 CPU tensor (N, H, W): real numbers (ints and bools are converted, no rescaling),
    finite, non-empty. Raises TypeError or ValueError naming ``images``, with a hint for one image or colour
    images. Used by :func:`filterlib.diagnose` (chapters/diagnose.md)."""
    if isinstance(images, torch.Tensor):
        arr = images.detach().cpu()
        if arr.dtype.is_complex:
            raise TypeError(f"images must hold real numbers, got dtype {arr.dtype}")
        t = arr.to(_DTYPE)
    else:
        try:
            arr = np.asarray(images)
        except Exception as exc:                                        # noqa: BLE001 (any failure is a bad input)
            raise TypeError(f"images must be a torch tensor or numpy array of shape (N, H, W), got "
                            f"{type(images).__name__}") from exc
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"images must hold real numbers (a numeric array of shape (N, H, W)), got dtype "
                            f"{arr.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float64))
    if t.dim() != 3:
        hint = " (a single image: add a leading axis, images[None])" if t.dim() == 2 else ""
        hint = hint or (" (colour images: convert to grayscale first)" if t.dim() == 4 else "")
        raise ValueError(f"images must have shape (N, H, W), got shape {tuple(t.shape)}{hint}")
    if t.numel() == 0:
        raise ValueError(f"images must not be empty, got shape {tuple(t.shape)}")
    bad = ~torch.isfinite(t)
    if bool(bad.any()):
        i = int(bad.reshape(t.shape[0], -1).any(dim=1).nonzero()[0])
        raise ValueError(f"images contains NaN or infinite values ({int(bad.sum())} pixels; first in image {i})")
    big = float(t.abs().max())
    low, high = PIXEL_RANGE
    if big > high or 0 < big < low:
        where = f"entries up to {big:.3g}" if big > high else f"no entry above {big:.3g}"
        raise ValueError(f"images has {where} in absolute value, outside [{low:g}, {high:g}], where the diagnosis "
                         f"computes safely in float64 (its constants are sums of products of pixels); divide the "
                         f"images by their largest absolute value")
    return t


def _npy(path, what: str, key: str, max_bytes: int) -> np.ndarray:
    """The array of an .npy file, or of an .npz archive (its only array, or the one named ``key``), after checking
    the size its header declares against ``max_bytes``."""
    try:
        with open(path, "rb") as fp:
            head = fp.read(6)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} file {path} does not exist") from None
    except OSError as exc:
        raise ValueError(f"cannot read {what} file {path} ({exc})") from None
    if head[:4] in _ZIP_MAGIC:
        return _npz(path, what, key, max_bytes)
    try:
        with open(path, "rb") as fp:
            _check_declared(fp, f"{what} file {path}", Path(path).stat().st_size, max_bytes)
        return np.load(path, allow_pickle=False)
    except _TooLarge:
        raise
    except _READ_ERRORS as exc:
        raise ValueError(f"cannot read {what} file {path}: it is not a valid .npy/.npz file without pickled "
                         f"objects ({exc})") from None


def _check_declared(fp, where: str, available: int, max_bytes: int) -> None:
    """Read an .npy header from ``fp`` and refuse, before any allocation, an array larger than ``max_bytes`` or than
    the ``available`` bytes of the file."""
    version = np.lib.format.read_magic(fp)
    header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = header(fp)
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if nbytes > max_bytes:
        raise _TooLarge(f"{where} declares an array of shape {shape} and dtype {dtype}, {_size(nbytes)}, more than "
                        f"the limit of {_size(max_bytes)}; if the file is genuine, {_RAISE}")
    if not dtype.hasobject and nbytes > available - fp.tell():
        raise ValueError(f"the header declares {_size(nbytes)} of data (shape {shape}, dtype {dtype}) but the file "
                         f"holds only {_size(max(available - fp.tell(), 0))}: it is truncated")


class _TooLarge(ValueError):
    """A file declares more than the limit (the message says how to raise it)."""


def _npz(path, what: str, key: str, max_bytes: int) -> np.ndarray:
    try:
        archive = zipfile.ZipFile(path)
    except _READ_ERRORS as exc:
        raise ValueError(f"cannot read {what} file {path}: it is not a valid .npz archive ({exc})") from None
    with archive:
        members = {name.removesuffix(".npy"): name for name in archive.namelist()}
        if not members:
            raise ValueError(f"{what} file {path} is an .npz archive with no arrays")
        name = key if key in members else (next(iter(members)) if len(members) == 1 else None)
        if name is None:
            raise ValueError(f"{what} file {path} holds several arrays ({', '.join(members)}); name the one to use "
                             f"{key!r} or save only one")
        try:
            info = archive.getinfo(members[name])
            with archive.open(info) as fp:
                _check_declared(fp, f"array {name!r} of {what} file {path}", info.file_size, max_bytes)
            with archive.open(info) as fp:
                return np.lib.format.read_array(fp, allow_pickle=False)
        except _TooLarge:
            raise
        except _READ_ERRORS as exc:
            raise ValueError(f"cannot read array {name!r} of {what} file {path} ({exc})") from None


def _open_png(path):
    """A PNG opened lazily (header only), with Pillow's decompression-bomb warning made an error like its bomb error."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValueError(f"cannot read image file {path}: Pillow refuses it as a possible decompression bomb "
                         f"({exc})") from None
    except FileNotFoundError:
        raise FileNotFoundError(f"image file {path} does not exist") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ValueError(f"cannot read image file {path}: not a readable PNG ({exc})") from None


def _png_bytes(path) -> int:
    """The float64 size of a PNG's pixels, from its header."""
    with _open_png(path) as img:
        return img.size[0] * img.size[1] * 8


LUMA = (0.299, 0.587, 0.114)
"""ITU-R BT.601 luma weights (R, G, B): how a colour PNG becomes one grayscale channel (chapters/diagnose.md)."""
SCALES = ("unit", "none")
"""Pixel scales of :func:`read_images`: "unit" (8-bit ÷ 255, 16-bit ÷ 65535), "none" (values as stored)."""
_LUMA_TEXT = "grayscale by ITU-R 601 luma 0.299 R + 0.587 G + 0.114 B"


def _png(path, max_bytes: int, scale: str = "unit") -> tuple[np.ndarray, str, str]:
    """One PNG as a float64 (H, W) array (in [0, 1] for ``scale="unit"``, the stored integers for "none"), its
    mode, and the conversion made; its float64 size is checked against ``max_bytes`` from its header, before it is
    decoded."""
    from PIL import UnidentifiedImageError

    img = _open_png(path)
    width, height = img.size
    if width * height * 8 > max_bytes:
        img.close()
        raise ValueError(f"image file {path} is {height}×{width} pixels, {_size(width * height * 8)} as float64, "
                         f"more than the limit of {_size(max_bytes)}; if the image is genuine, {_RAISE}")
    try:
        with img:
            img.load()
            mode = img.mode
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(img, dtype=np.float64)
                if mode.startswith("I;16"):
                    divisor, how = 65535.0, "16-bit grayscale"
                else:
                    divisor = max(1.0, float(arr.max()))
                    how = f"32-bit integer grayscale (÷ its largest value {divisor:g} for unit scale)"
                if scale == "unit":
                    arr = arr / divisor
            else:
                how = {"L": "8-bit grayscale", "F": "32-bit float grayscale", "1": "1-bit (black and white)",
                       "LA": "8-bit grayscale with alpha (alpha ignored)"}.get(mode)
                if mode not in ("L", "F"):
                    rgb = "RGBA" if "A" in mode or mode == "P" else "RGB"
                    if how is None:
                        how = {"RGB": "RGB", "RGBA": "RGBA (alpha ignored)", "P": "palette (via RGBA, alpha "
                               "ignored)"}.get(mode, f"{mode} (via {rgb})")
                        how += f" → {_LUMA_TEXT}"
                    img = img.convert(rgb)
                arr = np.asarray(img, dtype=np.float64)
                if arr.ndim == 3:                                       # RGB(A): ITU-R 601 luma, alpha ignored
                    arr = arr[..., :3] @ np.array(LUMA)
                if mode != "F" and scale == "unit":
                    arr = arr / 255.0
    except FileNotFoundError:
        raise FileNotFoundError(f"image file {path} does not exist") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ValueError(f"cannot read image file {path}: not a readable PNG ({exc})") from None
    return arr, mode, how


def _array_scale(arr: np.ndarray, scale: str) -> tuple[np.ndarray, str]:
    """An array's pixels and how they were scaled: "none" keeps them; "unit" divides integer dtypes by their
    largest value (uint8 by 255, uint16 by 65535) and floats by their largest absolute value when it exceeds 1."""
    if scale == "none" or arr.dtype.kind not in "biuf":
        return arr, "as stored (no rescaling)"
    if arr.dtype.kind in "iu":
        top = float(np.iinfo(arr.dtype).max)
        return arr.astype(np.float64) / top, f"unit: {arr.dtype} divided by {top:g}"
    if arr.dtype.kind == "b":
        return arr, "unit: booleans as 0 and 1"
    big = float(np.max(np.abs(arr))) if arr.size and np.all(np.isfinite(arr)) else 0.0
    if big > 1:
        return arr / big, f"unit: divided by the largest absolute value {big:.4g}"
    return arr, "unit: already within [−1, 1] (no rescaling)"


def load_images(path, *, max_bytes: int | None = None) -> np.ndarray:
    """Images (N, H, W) from a .npy file, an .npz archive (its only array, or the one named ``images``) or a folder
    of PNG files (sorted by name; RGB converted to grayscale by ITU-R 601 luma, pixels scaled to [0, 1]; all of one
    size). Pickled objects are refused. Nothing larger than ``max_bytes`` (default ``FILTERLIB_MAX_BYTES``, 2 GiB)
    is allocated: an .npy header's declared size, and the PNG files' pixels as float64, are checked first. Raises
    FileNotFoundError or ValueError with a message naming the file. :func:`read_images` also says how the images
    were read. Used by ``python -m filterlib diagnose`` (chapters/diagnose.md)."""
    return read_images(path, max_bytes=max_bytes)[0]


def read_images(path, *, max_bytes: int | None = None, scale: str | None = None) -> tuple[np.ndarray, dict]:
    """Images (N, H, W) as :func:`load_images` reads them, and a dict saying how they were read: ``source``,
    ``format`` ("png", "npy", "npz"), ``files``, ``modes`` (PNG modes and their counts, e.g. {"RGB": 2}),
    ``conversion`` (each distinct conversion made, e.g. "RGB → grayscale by ITU-R 601 luma 0.299 R + 0.587 G +
    0.114 B"; "none" when there was none) and ``scale`` (how pixel values were scaled).

    ``scale``: "unit" (PNG: 8-bit ÷ 255, 16-bit ÷ 65535; arrays: integer dtypes ÷ their largest value, floats ÷
    their largest |value| when it exceeds 1), "none" (values as stored) or None, the default: "unit" for PNG files
    and "none" for arrays. Used by ``python -m filterlib diagnose`` (chapters/diagnose.md)."""
    if scale is not None and scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)} (or None for the default), got {scale!r}")
    path = Path(path)
    limit = _limit(max_bytes)
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.suffix.lower() == ".png" and f.is_file())
        if not files:
            raise ValueError(f"folder {path} contains no .png files")
        total = sum(_png_bytes(f) for f in files)
        if total > limit and len(files) > 1:                            # (one file: _png says which it is)
            raise ValueError(f"the {len(files)} PNG files in {path} hold {_size(total)} of pixels as float64, more "
                             f"than the limit of {_size(limit)}; if the images are genuine, {_RAISE}")
        read = [_png(f, limit, scale or "unit") for f in files]
        arrays = [r[0] for r in read]
        first = arrays[0].shape
        for f, a in zip(files, arrays):
            if a.shape != first:
                raise ValueError(f"the PNG files in {path} differ in size: {files[0].name} is {first[0]}×{first[1]} "
                                 f"but {f.name} is {a.shape[0]}×{a.shape[1]}; all images must be the same size")
        return np.stack(arrays), _png_info(path, read, scale or "unit")
    if not path.exists():
        raise FileNotFoundError(f"images file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".npy", ".npz"):
        arr = _npy(path, "images", "images", limit)
        arr, how = _array_scale(arr, scale or "none")
        return arr, {"source": str(path), "format": suffix[1:], "files": 1, "modes": {},
                     "dtype": str(getattr(arr, "dtype", "?")), "conversion": "none", "scale": how}
    if suffix == ".png":
        read = _png(path, limit, scale or "unit")
        return read[0][None], _png_info(path, [read], scale or "unit")
    raise ValueError(f"images file {path} must be .npy, .npz, .png or a folder of PNG files, got "
                     f"{suffix or 'a name without suffix'}")


def describe(info: dict) -> str:
    """One sentence on how images were read, from the dict of :func:`read_images` (or the ``setup["input"]`` of a
    diagnosis): source, format, PNG modes or array dtype, conversion, pixel scale (chapters/diagnose.md)."""
    if not info:
        return ""
    what = [str(info.get("format", "?"))]
    modes = info.get("modes") or {}
    if modes:
        what.append(", ".join(f"{m} ×{c}" for m, c in modes.items()))
    if info.get("dtype"):
        what.append(f"dtype {info['dtype']}")
    return (f"{info.get('source', '?')} ({'; '.join(what)}); conversion: {info.get('conversion', 'none')}; "
            f"scale: {info.get('scale', '?')}")


def _png_info(path, read: list, scale: str) -> dict:
    modes: dict = {}
    conversions: list = []
    for _, mode, how in read:
        modes[mode] = modes.get(mode, 0) + 1
        if how not in conversions:
            conversions.append(how)
    if scale == "unit":
        how_scale = "unit: 8-bit values divided by 255, 16-bit by 65535 (pixels in [0, 1])"
    else:
        how_scale = "none: values as stored (0–255 for 8-bit, 0–65535 for 16-bit)"
    return {"source": str(path), "format": "png", "files": len(read), "modes": modes,
            "conversion": "; ".join(conversions), "scale": how_scale}


def load_teacher(path, *, max_bytes: int | None = None) -> np.ndarray:
    """A teacher filter from a .npy file (shape (s, s) or (s·s,)), or an .npz archive (its only array, or the one
    named ``teacher``); pickled objects are refused and the declared size is checked against ``max_bytes`` as in
    :func:`load_images`. Used by ``python -m filterlib diagnose --teacher FILE`` (chapters/diagnose.md)."""
    return _npy(path, "teacher", "teacher", _limit(max_bytes))
