"""A user's images and teacher filter, read from files or arrays for :func:`filterlib.diagnose` and its command line
``python -m filterlib diagnose`` (chapters/diagnose.md).

* :func:`load_images`: images (N, H, W) from a .npy file, an .npz archive or a folder of PNG files.
* :func:`load_teacher`: a teacher filter from a .npy file.
* :func:`as_images`: any array or tensor of images as a checked float64 CPU tensor (N, H, W).

Pickled objects are refused; every error names the file or the parameter.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

_DTYPE = torch.float64


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
    return t


def _npy(path, what: str) -> np.ndarray:
    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} file {path} does not exist") from None
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"cannot read {what} file {path}: it is not a valid .npy/.npz file without pickled "
                         f"objects ({exc})") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            keys = list(loaded.files)
            if not keys:
                raise ValueError(f"{what} file {path} is an .npz archive with no arrays")
            key = "images" if "images" in keys else (keys[0] if len(keys) == 1 else None)
            if key is None:
                raise ValueError(f"{what} file {path} holds several arrays ({', '.join(keys)}); name the one to use "
                                 f"'images' or save only one")
            try:
                return loaded[key]
            except (OSError, ValueError, EOFError) as exc:
                raise ValueError(f"cannot read array {key!r} of {what} file {path} ({exc})") from None
    return loaded


def _png(path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(img, dtype=np.float64) / (65535.0 if mode.startswith("I;16") else max(
                    1.0, float(np.asarray(img).max())))
            else:
                if mode not in ("L", "F"):
                    img = img.convert("RGBA" if "A" in mode or mode == "P" else "RGB")
                arr = np.asarray(img, dtype=np.float64)
                if arr.ndim == 3:                                       # RGB(A): ITU-R 601 luma, alpha ignored
                    arr = arr[..., :3] @ np.array([0.299, 0.587, 0.114])
                if mode != "F":
                    arr = arr / 255.0
    except FileNotFoundError:
        raise FileNotFoundError(f"image file {path} does not exist") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ValueError(f"cannot read image file {path}: not a readable PNG ({exc})") from None
    return arr


def load_images(path) -> np.ndarray:
    """Images (N, H, W) from a .npy file, an .npz archive (its only array, or the one named ``images``) or a folder
    of PNG files (sorted by name; RGB converted to grayscale by ITU-R 601 luma, pixels scaled to [0, 1]; all of one
    size). Pickled objects are refused. Raises FileNotFoundError or ValueError with a message naming the file.
    Used by ``python -m filterlib diagnose`` (chapters/diagnose.md)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.suffix.lower() == ".png" and f.is_file())
        if not files:
            raise ValueError(f"folder {path} contains no .png files")
        arrays = [_png(f) for f in files]
        first = arrays[0].shape
        for f, a in zip(files, arrays):
            if a.shape != first:
                raise ValueError(f"the PNG files in {path} differ in size: {files[0].name} is {first[0]}×{first[1]} "
                                 f"but {f.name} is {a.shape[0]}×{a.shape[1]}; all images must be the same size")
        return np.stack(arrays)
    if not path.exists():
        raise FileNotFoundError(f"images file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".npy", ".npz"):
        return _npy(path, "images")
    if suffix == ".png":
        return _png(path)[None]
    raise ValueError(f"images file {path} must be .npy, .npz, .png or a folder of PNG files, got "
                     f"{suffix or 'a name without suffix'}")


def load_teacher(path) -> np.ndarray:
    """A teacher filter from a .npy file (shape (s, s) or (s·s,)); pickled objects are refused. Used by
    ``python -m filterlib diagnose --teacher FILE`` (chapters/diagnose.md)."""
    return _npy(path, "teacher")
