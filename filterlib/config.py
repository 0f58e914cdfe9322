"""Device, dtype and random-number settings for every filterlib computation (all chapters).

* ``FILTERLIB_DEVICE``: ``cpu``, ``cuda`` or ``auto`` (CUDA when available, else CPU). Default ``auto``.
* ``FILTERLIB_DTYPE``: ``float32`` (default) or ``float64``.
* ``FILTERLIB_PROGRESS``: ``0`` turns progress bars off (the book build and the tests set it).

Randomness always flows through explicit ``torch.Generator`` objects made by :func:`generator`, never through
torch's global seed, so a chapter's numbers depend only on the seeds written in it.
"""
from __future__ import annotations

import os

import torch

_DEVICES = ("cpu", "cuda", "auto")
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def device() -> torch.device:
    """The device named by ``FILTERLIB_DEVICE`` (``cpu``, ``cuda`` or ``auto``)."""
    name = os.environ.get("FILTERLIB_DEVICE", "auto").strip().lower()
    if name not in _DEVICES:
        raise ValueError(f"FILTERLIB_DEVICE must be one of {', '.join(_DEVICES)}, got {name!r}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("FILTERLIB_DEVICE=cuda but torch sees no CUDA device; use cpu or auto")
    return torch.device(name)


def default_dtype() -> torch.dtype:
    """The dtype named by ``FILTERLIB_DTYPE`` (``float32`` by default, or ``float64``)."""
    name = os.environ.get("FILTERLIB_DTYPE", "float32").strip().lower()
    if name not in _DTYPES:
        raise ValueError(f"FILTERLIB_DTYPE must be float32 or float64, got {name!r}")
    return _DTYPES[name]


def generator(seed: int, device_=None) -> torch.Generator:
    """A seeded ``torch.Generator`` on ``device_`` (default: :func:`device`)."""
    from ._validate import nonneg_int

    seed = nonneg_int(seed, "seed")
    g = torch.Generator(device=device_ if device_ is not None else device())
    g.manual_seed(seed)
    return g


def resolve_generator(generator=None, seed=None) -> torch.Generator:
    """The generator to draw from: ``generator`` itself, or a new one seeded with ``seed`` (exactly one given)."""
    if generator is not None and seed is not None:
        raise ValueError("pass either generator or seed, not both")
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        return generator
    if seed is None:
        raise ValueError("pass a seed (an int) or a generator: filterlib never draws from torch's global RNG")
    return globals()["generator"](seed)


def progress_enabled() -> bool:
    """Progress bars are on unless ``FILTERLIB_PROGRESS=0`` (set by ``make book`` and ``make test``)."""
    return os.environ.get("FILTERLIB_PROGRESS", "1").strip().lower() not in ("0", "false", "off", "no")
