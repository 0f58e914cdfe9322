"""Closed forms (derived in the book; not in the paper, and checked there against the Monte-Carlo estimators).

* One neuron with N(0, I_p) patches (chapters/smoothness.md, chapters/rate.md): :func:`gaussian_gamma`,
  :func:`gaussian_L`, :func:`gaussian_L_minus`, :data:`GAUSSIAN_BETA`; and the population loss and gradient for
  k i.i.d. Gaussian patches, :func:`gaussian_loss` and :func:`gaussian_gradient` (chapters/rate.md,
  chapters/conv_model.md).
* k independent N(0, I_p) patches (chapters/diagnose.md): :func:`gaussian_conv_constants`, the γ, L, L_{−w*} and
  cross sum of Assumptions 4.1–4.2.
* Close patches (chapters/conv_model.md): :func:`close_patches_cross_limit`, the small-angle limit of
  cross_sum(φ)/φ, a lower bound on L_cross.
"""
from __future__ import annotations

import math

import torch

from .. import _validate as v
from ..distributions import angular_mixture_density
from . import _inputs

GAUSSIAN_BETA = 1.0 / math.pi
"""β of Assumption 3.2 for N(0, I_p) patches: L_{−w*}(φ)/φ = (φ + sin φ)/(2πφ) ≤ 1/π (derived in
chapters/smoothness.md)."""


def gaussian_gamma(phi) -> torch.Tensor:
    """γ(φ) = (π − φ − sin φ)/(2π) for N(0, I_p) patches: the smaller in-plane eigenvalue of A_{w,w*}; 0.5 at
    φ = 0, 0 at φ = π, decreasing. Same shape as ``phi`` (0-d for a number). Derived in chapters/smoothness.md."""
    t, scalar = v.angles(phi)
    out = (math.pi - t - torch.sin(t)) / (2 * math.pi)
    return out[0] if scalar else out


def gaussian_L(phi) -> torch.Tensor:
    """L(φ) = (π − φ + sin φ)/(2π) for N(0, I_p) patches: the larger in-plane eigenvalue of A_{w,w*}; equal to γ
    only at φ ∈ {0, π}. Derived in chapters/smoothness.md."""
    t, scalar = v.angles(phi)
    out = (math.pi - t + torch.sin(t)) / (2 * math.pi)
    return out[0] if scalar else out


def gaussian_L_minus(phi) -> torch.Tensor:
    """L_{−w*}(φ) = (φ + sin φ)/(2π) ≤ φ/π for N(0, I_p) patches, hence β = 1/π. Derived in
    chapters/smoothness.md."""
    t, scalar = v.angles(phi)
    out = (t + torch.sin(t)) / (2 * math.pi)
    return out[0] if scalar else out


def _norm_angle(w, w_star):
    """‖w‖, ‖w*‖, ‖w‖cos θ, ‖w‖sin θ and θ = atan2(‖w‖sin θ, ‖w‖cos θ) (autograd friendly away from θ ∈ {0, π})."""
    ws_norm = w_star.norm()
    ws_hat = w_star / ws_norm
    par = w @ ws_hat                                                  # ‖w‖ cos θ
    perp = (w - par[..., None] * ws_hat).norm(dim=-1)                 # ‖w‖ sin θ
    theta = torch.atan2(perp, par)
    return w.norm(dim=-1), ws_norm, par, perp, theta


def gaussian_loss(w, w_star, k: int = 1) -> torch.Tensor:
    """Population loss ℓ(w) for k i.i.d. N(0, I_p) patches with average pooling (Tian 2017 for k = 1; derived in
    chapters/rate.md and chapters/conv_model.md):

    ℓ(w) = (1/2k)[‖w‖²/2 + ‖w*‖²/2 − 2g(w, w*)] + (k−1)/(4πk)(‖w‖ − ‖w*‖)²,
    g(w, w*) = ‖w‖‖w*‖(sin θ + (π − θ)cos θ)/(2π).

    ``w`` of shape (p,) gives a scalar, (R, p) gives (R,). Defined at w = 0 (ℓ(0) of Theorem 3.1's condition).
    """
    w, w_star = _inputs.pair(w, w_star)
    k = v.positive_int(k, "k")
    wn, wsn, par, perp, theta = _norm_angle(w, w_star)
    g = wsn * (perp + (math.pi - theta) * par) / (2 * math.pi)
    return (wn ** 2 / 2 + wsn ** 2 / 2 - 2 * g) / (2 * k) + (k - 1) / (4 * math.pi * k) * (wn - wsn) ** 2


def gaussian_gradient(w, w_star, k: int = 1) -> torch.Tensor:
    """Population gradient ∇ℓ(w) for k i.i.d. N(0, I_p) patches with average pooling (derived in
    chapters/rate.md and chapters/conv_model.md):

    ∇ℓ(w) = (1/k)[w/2 − ((π − θ)w* + ‖w*‖ sin θ ŵ)/(2π)] + (k−1)/(2πk)(‖w‖ − ‖w*‖)ŵ   (Tian 2017 for k = 1).

    ``w`` of shape (p,) or (R, p); undefined at w = 0 (ValueError naming ``w``).
    """
    w, w_star = _inputs.pair(w, w_star)
    k = v.positive_int(k, "k")
    v.nonzero_rows(w, "w")
    wn, wsn, _, perp, theta = _norm_angle(w, w_star)
    w_hat = w / wn[..., None]
    sin_t = perp / wn
    core = w / 2 - ((math.pi - theta)[..., None] * w_star + (wsn * sin_t)[..., None] * w_hat) / (2 * math.pi)
    return core / k + ((k - 1) / (2 * math.pi * k) * (wn - wsn))[..., None] * w_hat


def gaussian_conv_constants(phi, k: int) -> dict:
    """Assumption 4.1–4.2 quantities for k independent N(0, I_p) patches (p ≥ 2), derived in chapters/diagnose.md.

    With m_A = E[Z 1{A}] for a region A of one patch, E[Z_S Z_Sᵀ] = (1/k)(A_S + (k − 1) m_S m_Sᵀ); in the plane of
    (w, w*) the wedges have |m| = cos(φ/2)/√(2π) (S(w, w*)) and sin(φ/2)/√(2π) (the two wedges of width φ). So

    * γ_k(φ) = (π − φ − sin φ)/(2πk)  (the one-neuron γ divided by k),
    * L_k(φ) = [(π − φ + sin φ)/(2π) + (k − 1)(1 + cos φ)/(4π)]/k,
    * L⁻_k(φ) = [(φ + sin φ)/(2π) + (k − 1)(1 − cos φ)/(4π)]/k  (β_k = its max over the grid of L⁻_k(φ)/φ),
    * cross_sum_k(φ) = (k − 1)/k · [sin φ + sin²(φ/2)]/(2π)  (σ_max of the rank-one T1, T2, T4; L_cross = max/φ).

    ``phi`` a number or 1-D array in (0, π]; returns a dict of float64 tensors of its shape. With k = 1 they are
    the one-neuron closed forms above (:func:`gaussian_gamma`, …) and cross_sum is 0.
    """
    k = v.positive_int(k, "k")
    t, scalar = v.angles(phi, dtype=torch.float64)
    if scalar:
        t = t[0]
    s, c = torch.sin(t), torch.cos(t)
    return {"gamma": (math.pi - t - s) / (2 * math.pi * k),
            "L": ((math.pi - t + s) / (2 * math.pi) + (k - 1) * (1 + c) / (4 * math.pi)) / k,
            "L_minus": ((t + s) / (2 * math.pi) + (k - 1) * (1 - c) / (4 * math.pi)) / k,
            "cross_sum": (k - 1) / k * (s + torch.sin(t / 2) ** 2) / (2 * math.pi)}


def close_patches_cross_limit(k: int, base_sigma: float = 1.0) -> float:
    """lim_{φ→0} cross_sum(φ)/φ for the close-patches law (:func:`filterlib.distributions.close_patches`) as its
    jitter σ² → 0 (but σ² > 0): (k − 1)/(2k) · (ρ(π/2) + ρ(−π/2)), with ρ the density of the base patch's signed
    angle to w* (:func:`filterlib.distributions.angular_mixture_density`). A lower bound on L_cross that does not
    shrink as the patches get closer (derived in chapters/conv_model.md, checked there against
    :func:`filterlib.theory.cross_sum`).

    Derivation (2-D unit patches, φ ≪ σ ≪ 1): S(w, −w*) is a wedge of width φ at w*'s boundary +π/2, hit by patch
    i with probability ρ(π/2)φ; given that, each other patch is on the agreeing side S(w, w*) with probability ½
    and all patches point along the boundary direction e, so T1 ≈ ρ(π/2)φ · k · (1/k)·((k − 1)/(2k)) · e eᵀ.
    T2 is the same at −π/2 and T4 needs patches π apart, so it vanishes. For identical patches (σ² = 0) every
    cross moment is 0: L_cross jumps from 0 to this value as soon as the patches differ.
    """
    k = v.positive_int(k, "k")
    base_sigma = v.positive_float(base_sigma, "base_sigma")
    density = angular_mixture_density(torch.tensor([math.pi / 2, -math.pi / 2], dtype=torch.float64), base_sigma).sum()
    return float((k - 1) / (2 * k) * density)
