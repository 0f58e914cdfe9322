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
    seed = v.nonneg_int(seed, "seed")
    g = torch.Generator(device=device if device is not None else config.device())
    g.manual_seed(seed)
    return g


def generator(seed: int, device=None) -> torch.Generator:
    """A seeded ``torch.Generator`` on ``device`` (default: :func:`filterlib.config.device`).

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
