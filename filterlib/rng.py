"""Seeded random-number generators for every filterlib draw (all chapters).

Randomness always flows through explicit ``torch.Generator`` objects made by :func:`generator`, never through
torch's global seed, so a chapter's numbers depend only on the seeds written in it. First used in
chapters/gd_gaussian.md.
"""
from __future__ import annotations

import torch

from . import _validate as v
from . import config


def _seeded(seed, device) -> torch.Generator:
    seed = v.seed(seed, "seed")
    device = _device(device) if device is not None else config.device()
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} is not available: torch sees no CUDA device; use 'cpu'")
    try:
        g = torch.Generator(device=device)
    except RuntimeError as exc:                                         # e.g. cuda:3 on a machine with one GPU
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"device {str(device)!r} cannot hold a random generator here ({first})") from None
    g.manual_seed(seed)
    return g


def _device(device) -> torch.device:
    """``device`` (a torch.device or a string such as "cpu", "cuda", "cuda:0") as a torch.device."""
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise TypeError(f"device must be a torch.device or a string such as 'cpu' or 'cuda', got {device!r}")
    try:
        return torch.device(device)
    except RuntimeError:
        raise ValueError(f"device must name a torch device such as 'cpu', 'cuda' or 'cuda:0', got {device!r}") \
            from None


def generator(seed: int, device=None) -> torch.Generator:
    """A seeded ``torch.Generator`` on ``device`` (default: :func:`filterlib.config.device`). ``seed`` is an
    integer from 0 to 2**64 − 1; ``device`` a torch.device or a string such as "cpu" or "cuda".

    Defined in chapters/gd_gaussian.md; every chapter that draws uses it.
    """
    return _seeded(seed, device)


def resolve_generator(generator=None, seed=None) -> torch.Generator:
    """The generator to draw from: ``generator`` itself, or a new one seeded with ``seed`` (exactly one given).

    Used by every sampler (chapters/one_neuron.md onwards)."""
    if generator is not None and seed is not None:
        raise ValueError("pass either generator or seed, not both")
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        return generator
    if seed is None:
        raise ValueError("pass a seed (an int) or a generator: filterlib never draws from torch's global RNG")
    return _seeded(seed, None)
