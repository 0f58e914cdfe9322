"""Device, dtype and progress settings for every filterlib computation (all chapters).

* ``FILTERLIB_DEVICE``: ``cpu``, ``cuda`` or ``auto`` (CUDA when available, else CPU). Default ``auto``.
* ``FILTERLIB_DTYPE``: ``float32`` (default) or ``float64``.
* ``FILTERLIB_PROGRESS``: ``0`` turns progress bars off (the book build and the tests set it).

This module is a leaf (it imports nothing from filterlib). Seeded generators are made by :mod:`filterlib.rng`.
"""
from __future__ import annotations

import os

import torch

_DEVICES = ("cpu", "cuda", "auto")
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def device() -> torch.device:
    """The device named by ``FILTERLIB_DEVICE`` (``cpu``, ``cuda`` or ``auto``).

    Defined in chapters/gd_gaussian.md (every chapter runs on it); GPU timings in chapters/performance.md."""
    name = os.environ.get("FILTERLIB_DEVICE", "auto").strip().lower()
    if name not in _DEVICES:
        raise ValueError(f"FILTERLIB_DEVICE must be one of {', '.join(_DEVICES)}, got {name!r}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("FILTERLIB_DEVICE=cuda but torch sees no CUDA device; use cpu or auto")
    return torch.device(name)


def default_dtype() -> torch.dtype:
    """The dtype named by ``FILTERLIB_DTYPE`` (``float32`` by default, or ``float64``).

    Used by every chapter, from chapters/gd_gaussian.md on."""
    name = os.environ.get("FILTERLIB_DTYPE", "float32").strip().lower()
    if name not in _DTYPES:
        raise ValueError(f"FILTERLIB_DTYPE must be float32 or float64, got {name!r}")
    return _DTYPES[name]


def progress_enabled() -> bool:
    """Progress bars are on unless ``FILTERLIB_PROGRESS=0`` (set by ``make book`` and ``make test``).

    Used by the training loops of every chapter (chapters/gd_gaussian.md on) and chapters/diagnose.md."""
    return os.environ.get("FILTERLIB_PROGRESS", "1").strip().lower() not in ("0", "false", "off", "no")
