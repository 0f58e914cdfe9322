"""Device, dtype and progress settings for every filterlib computation (all chapters).

* ``FILTERLIB_DEVICE``: ``cpu``, ``cuda`` or ``auto`` (CUDA when available, else CPU). Default ``auto``.
* ``FILTERLIB_DTYPE``: ``float32`` (default) or ``float64``.
* ``FILTERLIB_PROGRESS``: ``0`` turns progress bars off (the book build and the tests set it).
* ``FILTERLIB_MAX_BYTES``: the largest array a file may declare before it is read (``python -m filterlib diagnose``,
  :mod:`filterlib.data.files`); bytes, with an optional suffix K, M, G or T (powers of 1024). Default ``2G``.

Each variable is read, and checked, when it is used (so a test or a notebook may change it): a value that is not
allowed raises ValueError naming the variable, its value and the allowed values; an empty value means the default.
This module is a leaf (it imports nothing from filterlib). Seeded generators are made by :mod:`filterlib.rng`.
"""
from __future__ import annotations

import os

import torch

_DEVICES = ("cpu", "cuda", "auto")
_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_SUFFIXES = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
DEFAULT_MAX_BYTES = 2 * 2**30


def _setting(variable: str, default: str) -> str:
    """The variable's value, stripped and lower-cased; unset or empty: ``default``."""
    return os.environ.get(variable, "").strip().lower() or default


def device() -> torch.device:
    """The device named by ``FILTERLIB_DEVICE`` (``cpu``, ``cuda`` or ``auto``).

    Defined in chapters/gd_gaussian.md (every chapter runs on it); GPU timings in chapters/performance.md."""
    name = _setting("FILTERLIB_DEVICE", "auto")
    if name not in _DEVICES:
        raise ValueError(f"FILTERLIB_DEVICE must be one of {', '.join(_DEVICES)} (or unset: auto), got "
                         f"{os.environ['FILTERLIB_DEVICE']!r}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("FILTERLIB_DEVICE=cuda but torch sees no CUDA device; use cpu or auto")
    return torch.device(name)


def default_dtype() -> torch.dtype:
    """The dtype named by ``FILTERLIB_DTYPE`` (``float32`` by default, or ``float64``).

    Used by every chapter, from chapters/gd_gaussian.md on."""
    name = _setting("FILTERLIB_DTYPE", "float32")
    if name not in _DTYPES:
        raise ValueError(f"FILTERLIB_DTYPE must be float32 or float64 (or unset: float32), got "
                         f"{os.environ['FILTERLIB_DTYPE']!r}")
    return _DTYPES[name]


def parse_bytes(text: str, name: str) -> int:
    """A positive number of bytes from ``text``: digits with an optional suffix K, M, G or T (powers of 1024),
    e.g. ``"500M"``. Raises ValueError naming ``name`` (a variable or an option). Used by :func:`max_bytes` and the
    ``--max-bytes`` option of ``python -m filterlib diagnose`` (chapters/diagnose.md).

    >>> from filterlib import config
    >>> config.parse_bytes("500M", "--max-bytes") == 500 * 2**20
    True
    """
    body = str(text).strip().upper().removesuffix("B").removesuffix("I")
    digits, suffix = (body[:-1], body[-1]) if body[-1:] in _SUFFIXES and body[-1:] else (body, "")
    if not digits.isdigit() or int(digits) == 0:
        raise ValueError(f"{name} must be a positive number of bytes, digits with an optional suffix K, M, G or T "
                         f"(e.g. 4G), got {text!r}")
    return int(digits) * _SUFFIXES[suffix]


def max_bytes() -> int:
    """The largest array, in bytes, that a file may declare before :mod:`filterlib.data.files` reads it:
    ``FILTERLIB_MAX_BYTES`` (default 2 GiB). Used by ``python -m filterlib diagnose`` (chapters/diagnose.md)."""
    text = os.environ.get("FILTERLIB_MAX_BYTES", "").strip()
    return parse_bytes(text, "FILTERLIB_MAX_BYTES") if text else DEFAULT_MAX_BYTES


def progress_enabled() -> bool:
    """Progress bars are on unless ``FILTERLIB_PROGRESS=0`` (set by ``make book`` and ``make test``).

    Used by the training loops of every chapter (chapters/gd_gaussian.md on) and chapters/diagnose.md."""
    return os.environ.get("FILTERLIB_PROGRESS", "1").strip().lower() not in ("0", "false", "off", "no")
