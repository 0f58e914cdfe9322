"""Input distributions 𝒵 of patches, each a seeded sampler returning Z of shape (n, k, p).

Foundation chapter (chapters/gd_gaussian.md) uses :func:`gaussian`; Parts I–II add the paper's laws here.
"""
from __future__ import annotations

import torch

from . import _validate as v
from . import config


def gaussian(n: int, k: int, p: int, *, generator: torch.Generator | None = None, seed: int | None = None,
             dtype: torch.dtype | None = None) -> torch.Tensor:
    """n samples of k i.i.d. N(0, I_p) patches (non-overlapping Gaussian patches; SPEC §4 items 1–7).

    Pass either a ``generator`` (its device is used) or a ``seed`` (device from ``FILTERLIB_DEVICE``).
    """
    n, k, p = v.positive_int(n, "n"), v.positive_int(k, "k"), v.positive_int(p, "p")
    g = config.resolve_generator(generator, seed)
    return torch.randn(n, k, p, generator=g, device=g.device, dtype=dtype or config.default_dtype())

