"""The convolutional-filter model of Du, Lee & Tian (2018), introduced in chapters/intro.md and chapters/gd_gaussian.md.

A sample holds ``k`` patches of size ``p``: ``Z`` has shape ``(n, k, p)``. The network is one filter ``w``
followed by ReLU and average pooling,

    f(w, Z) = (1/k) Σ_i relu(wᵀ Z_i),

the labels come from a teacher filter ``w_star`` and the loss is ``½ mean_n (f(w, Z) − f(w_star, Z))²``.
With ``k = 1`` this is the one-neuron model of Theorem 3.1.

Every function takes either one filter ``w`` of shape ``(p,)`` or ``R`` filters at once, ``(R, p)``. A batch of
filters may share one sample ``Z`` of shape ``(n, k, p)`` or have a sample each, ``(R, n, k, p)`` (used by SGD,
where every run draws its own minibatch).

The functions here validate their inputs and compute with :mod:`filterlib.kernel`, which holds the arithmetic
(the fused, chunked gradient pass of chapters/performance.md).

Scale. f is positively homogeneous in w and in Z, so every quantity here is a power of the scales of w and Z times
the same quantity on rescaled inputs. Where the direct computation overflows (float32 inputs near 1e19 already
square beyond its 3.4e38), it is redone on w and Z divided by their largest entries and scaled back in float64; a
result that the dtype cannot hold is a ValueError that names the inputs (and, in float32, suggests float64). Norms
and angles are computed from rescaled vectors, so tiny and huge vectors are neither zero nor infinite.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import _validate as v
from . import kernel


def validate(w, Z, *, w_name: str = "w") -> tuple[torch.Tensor, torch.Tensor]:
    """Check filters against a sample and return them as tensors: ``w`` one filter (p,) or R filters (R, p),
    ``Z`` a shared sample (n, k, p) or per-run samples (R, n, k, p), same dtype and device, p = Z's patch size.

    Every function of this module and the training loops of :mod:`filterlib.train` start with it
    (chapters/gd_gaussian.md). ``w_name`` names the filters in error messages (``"w0"`` for a start).
    """
    Z = v.tensor(Z, "Z", ndim=(3, 4))
    w = v.filters(w, w_name, like=Z, of=" (the patch size of Z)")
    if Z.dim() == 4 and (w.dim() != 2 or w.shape[0] != Z.shape[0]):
        raise ValueError(f"a per-run sample Z of shape (R, n, k, p) = {tuple(Z.shape)} needs {w_name} of shape "
                         f"(R, p) = ({Z.shape[0]}, {Z.shape[-1]}), got {tuple(w.shape)}")
    return w, Z


def forward(w, Z) -> torch.Tensor:
    """Network output f(w, Z) = (1/k) Σ_i relu(wᵀZ_i): shape (n,) for ``w`` of shape (p,), (R, n) for (R, p).

    Defined in chapters/gd_gaussian.md (the model of chapters/intro.md). Huge or tiny inputs are handled as the
    module notes say:

    >>> import filterlib as fl
    >>> f = fl.forward([1e20, 1e20], [[[1e19, -9e18]]])    # wᵀZ = 1e38 although each product overflows float32
    >>> round(float(f[0]) / 1e38, 4)
    1.0
    """
    w, Z = validate(w, Z)
    out = kernel.outputs(w, Z)
    if v.all_finite(out):
        return out
    return _rescaled("f(w, Z)", lambda w1, s1, Z1: kernel.outputs(w1, Z1), w, None, Z, (1, 1))


def loss(w, w_star, Z) -> torch.Tensor:
    """ℓ(w) = ½ mean_n (f(w, Z_n) − f(w_star, Z_n))²: a scalar for one filter, shape (R,) for R filters.

    Defined in chapters/gd_gaussian.md."""
    w, Z = validate(w, Z)
    w_star = v.vector(w_star, "w_star", like=Z)
    out = _loss(w, w_star, Z)
    if v.all_finite(out):
        return out
    return _rescaled("the loss ℓ(w)", _loss, w, w_star, Z, (2, 2))


def _loss(w, w_star, Z):
    return kernel.loss_and_gradient(w, Z, kernel.outputs(w_star, Z), need_gradient=False)[0]


def _gradient(w, w_star, Z):
    return kernel.loss_and_gradient(w, Z, kernel.labels(w_star, Z))[1]


def _rescaled(what: str, compute, w, w_star, Z, powers: tuple[int, int]) -> torch.Tensor:
    """``compute(w, w_star, Z)`` when the direct computation overflowed: on w, w_star divided by a (the largest
    |entry| of w and w_star) and Z by s (Z's largest |entry|), times a^i s^j in float64, ``powers`` = (i, j).
    Raises ValueError naming w, w_star and Z when the result does not fit the dtype."""
    a = float(w.abs().max())
    if w_star is not None:
        a = max(a, float(w_star.abs().max()))
    s = float(Z.abs().max())
    a, s = a or 1.0, s or 1.0
    out = compute(w / a, None if w_star is None else w_star / a, Z / s).double()
    i, j = powers
    for factor in (a * s,) * min(i, j) + (a,) * (i - min(i, j)) + (s,) * (j - min(i, j)):
        out = out * factor                          # a·s first: a huge w on a tiny Z gives a moderate product
    result = out.to(Z.dtype)
    if v.all_finite(result):
        return result
    given = (f"{'w and w_star have' if w_star is not None else 'w has'} entries up to {a:.3g} and Z up to {s:.3g} "
             f"in absolute value")
    if Z.dtype == torch.float32 and v.all_finite(out):
        raise ValueError(f"{what} exceeds the range of float32 (±{torch.finfo(torch.float32).max:.3g}): {given}; "
                         f"use float64 (FILTERLIB_DTYPE=float64, or float64 tensors)")
    raise ValueError(f"{what} exceeds the range of {str(Z.dtype).removeprefix('torch.')}: {given}; rescale "
                     f"the filters or Z")


def gradient(w, w_star, Z) -> torch.Tensor:
    """Closed-form gradient of :func:`loss` (no autograd): shape (p,) for one filter, (R, p) for R filters.

    Defined in chapters/gd_gaussian.md; the identity behind it is taught in chapters/one_neuron.md (k = 1) and
    chapters/conv_model.md: it is the empirical version of ∇ℓ(w) = E[Z_w Z_wᵀ] w − E[Z_w Z_{w*}ᵀ] w*, with
    Z_v = (1/k) Σ_i Z_i 1{vᵀZ_i ≥ 0}. Computed by the fused pass of chapters/performance.md.
    """
    w, Z = validate(w, Z)
    w_star = v.vector(w_star, "w_star", like=Z)
    out = _gradient(w, w_star, Z)
    if v.all_finite(out):
        return out
    return _rescaled("the gradient ∇ℓ(w)", _gradient, w, w_star, Z, (1, 2))


def angle(w, w_star) -> torch.Tensor:
    """θ(w, w_star) in radians, in [0, π]: a scalar for ``w`` of shape (p,), shape (R,) for (R, p).

    Defined in chapters/gd_gaussian.md. Only directions matter, whatever the scale:

    >>> import filterlib as fl
    >>> round(float(fl.angle([1e30, 1e30], [-1e-30, -1e-30])), 6)
    3.141593
    """
    w = v.tensor(w, "w", ndim=(1, 2))
    w_star = v.vector(w_star, "w_star", like=w if not isinstance(w_star, torch.Tensor) else None, like_name="w")
    v.same_float(w, w_star, "w", "w_star")
    v.check_size(w, w_star.shape[0], "w", of=" (the size of w_star)")
    v.nonzero_rows(w, "w", any_scale=True)
    v.nonzero_rows(w_star, "w_star", any_scale=True)
    return unit_angle(w, w_star)


def unit_angle(w: torch.Tensor, w_star: torch.Tensor) -> torch.Tensor:
    """θ = 2·atan2(‖u − s‖, ‖u + s‖) with u, s the unit vectors of w (per row) and w_star: accurate near 0 and π
    and free of the under/overflow of (w·w*)/(‖w‖‖w*‖) for tiny or huge vectors. No checks (callers validate);
    a zero row gives NaN. :func:`angle` after its checks; also the angles that :mod:`filterlib.train` records
    (chapters/gd_gaussian.md)."""
    u, s = unit(w), unit(w_star)
    return 2 * torch.atan2((u - s).norm(dim=-1), (u + s).norm(dim=-1))


# The largest entries whose squares, summed over up to 2**20 entries, neither overflow nor leave the normal range.
_SAFE = {torch.float32: (2.0 ** -50, 2.0 ** 50), torch.float64: (2.0 ** -400, 2.0 ** 400)}


def _row_scale(x: torch.Tensor) -> torch.Tensor:
    """Per row (last axis): 1 where the squares of x are safe (so those rows are computed exactly as before), else
    the row's largest |entry| (a zero row or a non-finite entry keeps 1)."""
    m = x.abs().amax(dim=-1, keepdim=True)
    low, high = _SAFE[x.dtype]
    keep = ((m >= low) & (m <= high)) | (m == 0) | ~torch.isfinite(m)
    return torch.where(keep, torch.ones_like(m), m)


def norm(x: torch.Tensor) -> torch.Tensor:
    """‖x‖ along the last axis without the overflow or underflow of the squares: rows of huge or tiny entries are
    divided by their largest entry first (inf only where the norm itself exceeds the dtype). No checks. The
    distances that :mod:`filterlib.train` records (chapters/gd_gaussian.md)."""
    scale = _row_scale(x)
    return (x / scale).norm(dim=-1) * scale.squeeze(-1)


def unit(x: torch.Tensor) -> torch.Tensor:
    """x / ‖x‖ along the last axis, computed from x divided by its largest entry where its squares would overflow
    or underflow. No checks (a zero row gives NaN). Used by :func:`unit_angle` (chapters/gd_gaussian.md)."""
    y = x / _row_scale(x)
    return y / y.norm(dim=-1, keepdim=True)


def patches(images, size, stride=1) -> torch.Tensor:
    """Cut images of shape (N, H, W) into patches: returns Z of shape (N, k, p) with p = size_h·size_w.

    ``size`` and ``stride`` are ints or (height, width) pairs; no padding. Patches are flattened row by row,
    so ``forward(w, patches(x, K))`` equals ``relu(conv2d(x, w.view(K, K))).mean()`` (a cross-correlation).
    Used in chapters/mnist.md and chapters/diagnose.md.
    """
    images = v.tensor(images, "images", ndim=3)
    size = _pair(size, "size")
    stride = _pair(stride, "stride")
    H, W = images.shape[1:]
    if size[0] > H or size[1] > W:
        raise ValueError(f"size {size} is larger than the images, which are {H}×{W}")
    cols = F.unfold(images.unsqueeze(1), kernel_size=size, stride=stride)  # (N, p, k)
    return cols.transpose(1, 2).contiguous()


def _pair(x, name):
    if isinstance(x, (tuple, list)):
        if len(x) != 2:
            raise ValueError(f"{name} must be an int or a pair (height, width), got {x!r}")
        return (v.positive_int(x[0], name), v.positive_int(x[1], name))
    x = v.positive_int(x, name)
    return (x, x)


def relative_loss(w, w_star, Z) -> torch.Tensor:
    """Relative loss RL(w) = log10( mean_n (f(w, Z_n) − y_n)² / (mean_n y_n)² ) with labels y_n = f(w_star, Z_n).

    Defined in chapters/mnist.md, for Fig. 3(c)/(d) and Fig. 5: the paper's "logarithm of squared error divided
    by the square of mean of data points" (Section 5). The logarithm is **base 10** and the error is the plain
    mean squared error, without the ½ of :func:`loss`, so RL(w) = log10(2·ℓ(w) / ȳ²). Since f is positively
    homogeneous, RL(c·w, c·w_star) = RL(w, w_star) for every c > 0.

    Shapes as for :func:`loss`: a scalar for ``w`` of shape (p,), shape (R,) for (R, p) sharing Z (n, k, p) or
    with per-run samples (R, n, k, p). An exact fit gives −inf (log10 of 0), never NaN, also in a batch: the
    teacher's outputs are computed in the same products as the filters' (:func:`filterlib.kernel.residual_pass`),
    so a filter equal to w_star has residual exactly 0. Raises ValueError naming ``w_star`` when the mean label is
    0 (the teacher is inactive on every patch, e.g. w_star ≤ 0 entrywise on non-negative images), where RL is
    undefined. Computed in chunks over n, so many filters on many patches fit in memory. Not differentiable
    (the result carries no autograd graph).
    """
    w, Z = validate(w, Z)
    w_star = v.vector(w_star, "w_star", like=Z)
    single = w.dim() == 1
    W = w.unsqueeze(0) if single else w
    rl, y_bar = _relative_loss(W, w_star, Z)
    if bool((torch.isnan(rl) | (rl == math.inf) | (y_bar == 0)).any()):  # overflow or underflow: RL is scale-free
        a = max(float(W.abs().max()), float(w_star.abs().max())) or 1.0
        rl, y_bar = _relative_loss(W / a, w_star / a, Z / (float(Z.abs().max()) or 1.0))
    if bool((y_bar == 0).any()):
        raise ValueError("w_star gives labels y = f(w_star, Z) whose mean is 0 (w_starᵀZ_i ≤ 0 for every patch), "
                         "so the relative loss, which divides by the squared mean label, is undefined; "
                         "use a teacher w_star that is active on some patches")
    return rl[0] if single else rl


def _relative_loss(W, w_star, Z):
    sse, y = kernel.residual_pass(W, w_star, Z)
    y_bar = y.mean(dim=-1)                                                  # a scalar, or (R,) for per-run samples
    return torch.log10(sse / Z.shape[-3]) - 2 * torch.log10(y_bar), y_bar   # not log10(mse/ȳ²): ȳ² may underflow
