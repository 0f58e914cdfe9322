"""The convolutional-filter model of Du, Lee & Tian (2018), §1 of the book (chapters/intro.md).

A sample holds ``k`` patches of size ``p``: ``Z`` has shape ``(n, k, p)``. The network is one filter ``w``
followed by ReLU and average pooling,

    f(w, Z) = (1/k) Σ_i relu(wᵀ Z_i),

the labels come from a teacher filter ``w_star`` and the loss is ``½ mean_n (f(w, Z) − f(w_star, Z))²``.
With ``k = 1`` this is the one-neuron model of Theorem 3.1.

Every function takes either one filter ``w`` of shape ``(p,)`` or ``R`` filters at once, ``(R, p)``. A batch of
filters may share one sample ``Z`` of shape ``(n, k, p)`` or have a sample each, ``(R, n, k, p)`` (used by SGD,
where every run draws its own minibatch).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import _validate as v


def _check_pair(w, Z, *, w_name="w"):
    """Validate a filter (or batch of filters) against a sample; return tensors on Z's device and dtype."""
    Z = v.tensor(Z, "Z", ndim=(3, 4))
    w = v.tensor(w, w_name, ndim=(1, 2))
    v.same_float(w, Z, w_name, "Z")
    p = Z.shape[-1]
    if w.shape[-1] != p:
        raise ValueError(f"{w_name} must have size p={p} in its last dimension (the patch size of Z), "
                         f"got shape {tuple(w.shape)}")
    if Z.dim() == 4:
        if w.dim() != 2 or w.shape[0] != Z.shape[0]:
            raise ValueError(f"a per-run sample Z of shape (R, n, k, p) = {tuple(Z.shape)} needs {w_name} of shape "
                             f"(R, p) = ({Z.shape[0]}, {p}), got {tuple(w.shape)}")
    return w, Z


def _preactivations(w: torch.Tensor, Z: torch.Tensor) -> torch.Tensor:
    """wᵀZ_i for every patch: (n, k) for one filter, (R, n, k) for R filters."""
    if w.dim() == 1:
        return Z @ w
    if Z.dim() == 3:
        return torch.einsum("nkp,rp->rnk", Z, w)
    return torch.einsum("rnkp,rp->rnk", Z, w)


def _forward(w, Z):
    return torch.relu(_preactivations(w, Z)).mean(dim=-1)


def forward(w, Z) -> torch.Tensor:
    """Network output f(w, Z) = (1/k) Σ_i relu(wᵀZ_i): shape (n,) for ``w`` of shape (p,), (R, n) for (R, p)."""
    w, Z = _check_pair(w, Z)
    return _forward(w, Z)


def _check_teacher(w_star, Z):
    w_star = v.tensor(w_star, "w_star", ndim=1)
    v.same_float(w_star, Z, "w_star", "Z")
    if w_star.shape[0] != Z.shape[-1]:
        raise ValueError(f"w_star must have shape (p,) = ({Z.shape[-1]},), got {tuple(w_star.shape)}")
    return w_star


def _loss_and_gradient(w, Z, f_star, *, need_gradient=True):
    """Loss and closed-form gradient from one pass over Z, given the teacher outputs ``f_star``.

    The gradient is (1/n) Σ_n (f(w, Z_n) − y_n) (1/k) Σ_i Z_{n,i} 1{wᵀZ_{n,i} ≥ 0}, with the indicator
    ``≥ 0`` as in the paper (SPEC §1.2–1.3); autograd would use relu'(0) = 0, which differs only on a
    set of measure zero.
    """
    pre = _preactivations(w, Z)
    k, n = Z.shape[-2], Z.shape[-3]
    resid = torch.relu(pre).mean(dim=-1) - f_star
    loss = 0.5 * (resid * resid).mean(dim=-1)
    if not need_gradient:
        return loss, None
    coef = (pre >= 0).to(Z.dtype) * (resid / (k * n)).unsqueeze(-1)
    if w.dim() == 1:
        grad = torch.einsum("nk,nkp->p", coef, Z)
    elif Z.dim() == 3:
        grad = torch.einsum("rnk,nkp->rp", coef, Z)
    else:
        grad = torch.einsum("rnk,rnkp->rp", coef, Z)
    return loss, grad


def loss(w, w_star, Z) -> torch.Tensor:
    """ℓ(w) = ½ mean_n (f(w, Z_n) − f(w_star, Z_n))²: a scalar for one filter, shape (R,) for R filters."""
    w, Z = _check_pair(w, Z)
    w_star = _check_teacher(w_star, Z)
    return _loss_and_gradient(w, Z, _forward(w_star, Z), need_gradient=False)[0]


def gradient(w, w_star, Z) -> torch.Tensor:
    """Closed-form gradient of :func:`loss` (no autograd): shape (p,) for one filter, (R, p) for R filters.

    Serves Theorems 3.1–4.2 (chapters on gradient descent): it is the empirical version of
    ∇ℓ(w) = E[Z_w Z_wᵀ] w − E[Z_w Z_{w*}ᵀ] w*, with Z_v = (1/k) Σ_i Z_i 1{vᵀZ_i ≥ 0}.
    """
    w, Z = _check_pair(w, Z)
    w_star = _check_teacher(w_star, Z)
    return _loss_and_gradient(w, Z, _forward(w_star, Z))[1]


def angle(w, w_star) -> torch.Tensor:
    """θ(w, w_star) in radians, in [0, π]: a scalar for ``w`` of shape (p,), shape (R,) for (R, p)."""
    w = v.tensor(w, "w", ndim=(1, 2))
    w_star = v.tensor(w_star, "w_star", ndim=1)
    v.same_float(w, w_star, "w", "w_star")
    if w.shape[-1] != w_star.shape[0]:
        raise ValueError(f"w must have size p={w_star.shape[0]} in its last dimension, got shape {tuple(w.shape)}")
    v.nonzero_rows(w, "w")
    v.nonzero_rows(w_star, "w_star")
    cos = (w @ w_star) / (w.norm(dim=-1) * w_star.norm())
    return torch.arccos(cos.clamp(-1.0, 1.0))


def patches(images, size, stride=1) -> torch.Tensor:
    """Cut images of shape (N, H, W) into patches: returns Z of shape (N, k, p) with p = size_h·size_w.

    ``size`` and ``stride`` are ints or (height, width) pairs; no padding. Patches are flattened row by row,
    so ``forward(w, patches(x, K))`` equals ``relu(conv2d(x, w.view(K, K))).mean()`` (a cross-correlation).
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
