"""Teacher filters w*: the Gabor filter of Figure 3(d) and Figure 4(b) with the parameters the book uses
(:data:`PAPER_GABOR`), and :func:`resolve_teacher`, which turns ``None``/``"random"``/``"gabor"``/an array into the
teacher vector of :func:`filterlib.diagnose` (chapters/mnist.md, chapters/diagnose.md).
"""
from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from .. import _validate as v
from .. import config, rng

PAPER_GABOR = dict(size=5, theta=math.pi / 4, wavelength=4.0, sigma=1.5, gamma=0.5, psi=0.0)
"""Gabor teacher of Figure 3(d) / Figure 4(b) as chosen in chapters/mnist.md (the paper does not state its
parameters)."""

_DTYPE = torch.float64
#: Largest |entry| of a given teacher (and smallest non-zero largest |entry|) the diagnosis computes with safely in
#: float64: the loss holds products of the teacher and the pixels, squared.
TEACHER_RANGE = (1e-50, 1e50)


def _finite_real(x, name: str) -> float:
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a finite real number, got {x!r}")
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be a finite real number, got {x}")
    return x


def gabor(size: int, theta: float, wavelength: float, sigma: float, gamma: float, psi: float, *,
          dtype: torch.dtype | None = None, device=None) -> torch.Tensor:
    """Real Gabor filter, a (size, size) tensor: the teacher w* of Figure 3(d) / Figure 4(b). Defined in
    chapters/mnist.md; used in chapters/diagnose.md.

        g(x, y) = exp(−(x'² + γ² y'²) / (2σ²)) · cos(2π x'/λ + ψ),
        x' = x cos ϑ + y sin ϑ,   y' = −x sin ϑ + y cos ϑ,

    on the grid x, y ∈ {−(size−1)/2, …, (size−1)/2} (half-integers for even ``size``), with **row = y,
    column = x**: ``G[i, j] = g(j − (size−1)/2, i − (size−1)/2)``. This is scikit-image's convention; OpenCV's
    ``getGaborKernel`` returns the same array rotated by 180°, which differs only when ψ ≠ 0. ϑ (``theta``) is the
    direction of the normal to the stripes, λ (``wavelength``) in pixels, σ (``sigma``) the envelope width in
    pixels along x', γ (``gamma``) the aspect ratio (σ_y' = σ/γ), ψ (``psi``) the phase. Not normalised.
    ``gabor(**PAPER_GABOR)`` gives the paper-experiment filter; flatten it row-major to get w* for ``conv2d``.
    Computed in float64, returned in ``dtype`` (default :func:`filterlib.config.default_dtype`) on ``device``
    (default :func:`filterlib.config.device`).
    """
    size = v.positive_int(size, "size")
    theta, psi = _finite_real(theta, "theta"), _finite_real(psi, "psi")
    wavelength = v.positive_float(wavelength, "wavelength")
    sigma = v.positive_float(sigma, "sigma")
    gamma = v.positive_float(gamma, "gamma")
    dtype = v.float_dtype(dtype)
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    y, x = torch.meshgrid(coords, coords, indexing="ij")      # y varies along rows, x along columns
    xr = x * math.cos(theta) + y * math.sin(theta)
    yr = -x * math.sin(theta) + y * math.cos(theta)
    envelope = torch.exp(-((xr / sigma) ** 2 + (gamma * yr / sigma) ** 2) / 2)
    g = envelope * torch.cos(2 * math.pi * (xr / wavelength) + psi)
    if not bool(torch.isfinite(g).all()):
        raise ValueError(f"the Gabor filter is not finite for wavelength={wavelength!r}, sigma={sigma!r}: "
                         "use values of at least about 1e-150 pixels")
    return g.to(device=device if device is not None else config.device(), dtype=dtype)


def resolve_teacher(w_star, filter_size: int, *, seed: int = 0) -> tuple[torch.Tensor, str]:
    """The teacher filter as a float64 CPU vector of p = filter_size² entries (row-major), and its description.
    Used by :func:`filterlib.diagnose` (chapters/diagnose.md).

    ``None`` or ``"random"``: N(0, I_p) drawn from ``seed``; ``"gabor"``: :func:`gabor` with the parameters of
    :data:`PAPER_GABOR` except ``size = filter_size``; an array or tensor of shape (s, s) or (s·s,) with
    s = ``filter_size``: used as given (finite, non-zero, largest |entry| within :data:`TEACHER_RANGE`; the diagnosis
    does not depend on the teacher's scale). To read one from a file, see
    :func:`filterlib.data.load_teacher`.
    """
    s = v.positive_int(filter_size, "filter_size")
    p = s * s
    if w_star is None or (isinstance(w_star, str) and w_star == "random"):
        g = rng.generator(seed, "cpu")
        return torch.randn(p, generator=g, dtype=_DTYPE, device=g.device), f"random N(0, I) (seed {seed})"
    if isinstance(w_star, str):
        if w_star == "gabor":
            params = {**PAPER_GABOR, "size": s}
            w = gabor(**params, dtype=_DTYPE, device="cpu").reshape(-1)
            return w, f"Gabor {s}×{s} (PAPER_GABOR parameters)"
        raise ValueError(f"w_star must be None, 'random', 'gabor' or an array of shape ({s}, {s}) or ({p},), "
                         f"got the string {w_star!r} (to read a file use filterlib.data.load_teacher)")
    try:
        arr = w_star.detach().cpu().numpy() if isinstance(w_star, torch.Tensor) else np.asarray(w_star)
    except Exception as exc:                                            # noqa: BLE001
        raise TypeError(f"w_star must be an array of shape ({s}, {s}) or ({p},), got {type(w_star).__name__}") \
            from exc
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"w_star must hold real numbers, got dtype {arr.dtype}")
    if arr.shape not in ((s, s), (p,)):
        raise ValueError(f"w_star must have shape ({s}, {s}) or ({p},) for filter_size={s}, got shape {arr.shape}")
    w = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float64)).reshape(-1)
    if not bool(torch.isfinite(w).all()):
        raise ValueError("w_star contains NaN or infinite values")
    big = float(w.abs().max())                              # not ‖w‖: its square underflows for entries of 1e-200
    if big == 0:
        raise ValueError("w_star must be non-zero (an angle to it is needed), got a zero filter")
    low, high = TEACHER_RANGE
    if not low <= big <= high:
        where = f"entries up to {big:.3g}" if big > high else f"no entry above {big:.3g}"
        raise ValueError(f"w_star has {where} in absolute value, outside [{low:g}, {high:g}], where the diagnosis "
                         f"computes safely in float64; its scale does not matter (every distance is relative to "
                         f"‖w*‖), so divide w_star by its largest absolute entry")
    return w, f"given {s}×{s} filter"
