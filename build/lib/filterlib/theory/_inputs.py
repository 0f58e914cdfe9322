"""Input checks shared by the modules of :mod:`filterlib.theory`, written in the vocabulary of
:mod:`filterlib._validate` (a private submodule: only the theory modules import it)."""
from __future__ import annotations

import math

import torch

from .. import _validate as v


def sample(Z, *, one_patch: bool = False) -> torch.Tensor:
    """Z of shape (n, k, p): n inputs of k patches of size p (an empty Z, k = 0 included, fails naming Z). With
    ``one_patch`` it must have k = 1 (the one-neuron model of Part I)."""
    Z = v.tensor(Z, "Z", ndim=3)
    if one_patch and Z.shape[1] != 1:
        raise ValueError(f"Z must hold one patch per sample (k = 1, the one-neuron model of Part I): expected shape "
                         f"(n, 1, p), got {tuple(Z.shape)}")
    return Z


def teacher(w_star, Z: torch.Tensor) -> torch.Tensor:
    """The teacher: a non-zero (p,) vector with Z's dtype, device and patch size p."""
    return v.vector(w_star, "w_star", like=Z, nonzero=True)


def filters(w, Z: torch.Tensor) -> torch.Tensor:
    """One filter (p,) or a stack (R, p) next to the sample Z."""
    return v.filters(w, "w", like=Z, of=" (the patch size of Z)")


def pair(w, w_star) -> tuple[torch.Tensor, torch.Tensor]:
    """A filter (p,) or stack (R, p) and a non-zero teacher (p,), without a sample: the teacher takes w's dtype
    when it is not a tensor, and w must have its size."""
    w = v.filters(w, "w")
    w_star = v.tensor(w_star, "w_star", ndim=1, dtype=None if isinstance(w_star, torch.Tensor) else w.dtype)
    v.same_float(w, w_star, "w", "w_star")
    v.check_size(w, w_star.shape[0], "w", of=" (the size of w_star)")
    v.nonzero_rows(w_star, "w_star")
    return w, w_star


def batches(n_batches, Z: torch.Tensor, return_se) -> int:
    """The number of batches for an error bar (1 when ``return_se`` is False): at least 2, and 2 samples each."""
    if not v.flag(return_se, "return_se"):
        return 1
    B = v.positive_int(n_batches, "n_batches")
    if B < 2:
        raise ValueError(f"n_batches must be at least 2 for a standard error, got {B}")
    if Z.shape[0] < 2 * B:
        raise ValueError(f"Z has {Z.shape[0]} samples; a batch-means standard error with n_batches={B} needs at "
                         f"least {2 * B}")
    return B


def grid(phis, Z: torch.Tensor, name: str = "phis") -> torch.Tensor:
    """A grid of angles in (0, π/2] as a 1-D tensor in Z's dtype and device."""
    angles, _ = v.angles(phis, name, dtype=Z.dtype, device=Z.device, high=math.pi / 2, open_low=True)
    return angles


def angles(phi, Z: torch.Tensor, name: str = "phi") -> tuple[torch.Tensor, bool]:
    """Angles in [0, π] in Z's dtype and device, and whether ``phi`` was a single number."""
    return v.angles(phi, name, dtype=Z.dtype, device=Z.device)
