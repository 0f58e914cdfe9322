"""Synthetic images with the second-order statistics of photographs: 1/f noise (chapters/diagnose.md).

The power spectrum of natural photographs falls roughly as 1/f² with spatial frequency f (their amplitude as 1/f),
and their pixels are stored as non-negative 8-bit values whose mean is far from 0. :func:`natural_images` draws
Gaussian images with amplitude spectrum 1/f^``alpha`` (default 1), then gives each the mean and the standard
deviation of an 8-bit photograph (defaults 0.57 and 0.2 of the full scale, i.e. about 145 and 51 of 255), clips
to [0, 1] and rounds to multiples of 1/255 (an 8-bit file read back with unit scale). They stand in for real
photographs in the book: they need no licence, are deterministic from a seed, and show the same traps (a dead
teacher on uncentred pixels, strongly correlated neighbouring pixels).
"""
from __future__ import annotations

import math

import torch

from .. import _validate as v
from .. import rng

_DTYPE = torch.float64


def natural_images(n: int, size: int, *, alpha: float = 1.0, mean: float = 0.57, std: float = 0.2,
                   quantize: bool = True, seed: int = 0) -> torch.Tensor:
    """``n`` images of ``size``×``size`` pixels of 1/f^``alpha`` noise as a float64 CPU tensor (n, size, size) in
    [0, 1]: each image is shifted and scaled to pixel mean ``mean`` and standard deviation ``std``, clipped to
    [0, 1] and, with ``quantize``, rounded to multiples of 1/255. Deterministic from ``seed``. Defined in
    chapters/diagnose.md.

    >>> x = natural_images(3, 32, seed=1)
    >>> tuple(x.shape), bool((x >= 0).all() and (x <= 1).all())
    ((3, 32, 32), True)
    """
    n = v.positive_int(n, "n")
    size = v.positive_int(size, "size")
    if size < 2:
        raise ValueError(f"size must be at least 2, got {size}")
    alpha = float(alpha)
    if not (math.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"alpha must be a finite number ≥ 0, got {alpha!r}")
    mean = float(mean)
    if not (math.isfinite(mean) and 0 <= mean <= 1):
        raise ValueError(f"mean must lie in [0, 1], got {mean!r}")
    std = v.positive_float(std, "std")
    g = rng.generator(v.seed(seed, "seed"), "cpu")
    white = torch.randn(n, size, size, generator=g, dtype=_DTYPE, device=g.device)
    fy = torch.fft.fftfreq(size, dtype=_DTYPE)
    fx = torch.fft.rfftfreq(size, dtype=_DTYPE)
    f = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    amplitude = torch.where(f > 0, f.clamp_min(1e-12) ** -alpha, torch.zeros_like(f))     # no DC: mean set below
    x = torch.fft.irfft2(torch.fft.rfft2(white) * amplitude, s=(size, size))
    x = x - x.mean(dim=(1, 2), keepdim=True)
    x = x / x.std(dim=(1, 2), keepdim=True).clamp_min(1e-300)
    x = (mean + std * x).clamp(0.0, 1.0)
    if quantize:
        x = torch.round(x * 255) / 255
    return x
