"""The formulas of Theorems 3.2, 4.1 and 4.2: the step-size cap, the contraction factor and the iteration count of
gradient descent, given the constants γ, L, β (and L_cross) estimated by :mod:`filterlib.theory.estimators`
or taken from :mod:`filterlib.theory.closed_forms` or :mod:`filterlib.theory.quadrature`; φ_t, the angle bound
of Theorem 3.2; Theorem 4.1's largest step as a schedule and the inequalities of its proof along a run; and, for
stochastic gradient descent, φ*, the step, the iteration count and the failure bound of Theorem 4.2.

Arguments are numbers (the result is a float) or broadcastable tensors (the result is a tensor); each is
checked by :func:`filterlib._validate.numbers`.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .. import _validate as v
from . import _inputs


def phi_t(w, w_star) -> torch.Tensor:
    """φ_t = arcsin(‖w − w*‖/‖w*‖) of Theorem 3.2, an upper bound on θ(w, w*). Defined in chapters/rate.md.

    Needs ‖w − w*‖ < ‖w*‖ (ValueError naming ``w`` otherwise). ``w`` (p,) gives a scalar, (R, p) gives (R,).
    """
    w, w_star = _inputs.pair(w, w_star)
    ratio = (w - w_star).norm(dim=-1) / w_star.norm()
    if bool((ratio >= 1).any()):
        raise ValueError(f"w must satisfy ‖w − w_star‖ < ‖w_star‖ for φ_t (Theorem 3.2), got a ratio "
                         f"‖w − w_star‖/‖w_star‖ = {ratio.max().item():.4g}")
    return torch.arcsin(ratio)


def _finish(t: torch.Tensor, plain: bool, names: str = "the arguments"):
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"the result is not finite for these {names}: they are too large or too small "
                         "(the ratio overflows or divides by 0)")
    return float(t) if plain else t


# --------------------------------------------------------------------------------------------------------------
# Theorem 3.2: linear rate of gradient descent (one neuron)


def step_cap(gamma, L, beta):
    """Theorem 3.2's step-size cap γ/(2(L + 4β)²) (take γ, L at the φ that minimises it over [0, φ_t]). Defined
    in chapters/rate.md.

    Arguments are numbers (returns a float) or broadcastable tensors (returns a tensor); γ ≥ 0, L ≥ 0, β ≥ 0 and
    L + 4β > 0.
    """
    a, plain = v.numbers(gamma=(gamma, 0.0, False), L=(L, 0.0, False), beta=(beta, 0.0, False))
    denom = a["L"] + 4 * a["beta"]
    if bool((denom <= 0).any()):
        raise ValueError("L + 4·beta must be positive")
    return _finish(a["gamma"] / (2 * denom ** 2), plain, "gamma, L, beta")


def contraction_bound(eta, gamma):
    """Theorem 3.2's contraction factor 1 − ηγ/2: ‖w_{t+1} − w*‖² ≤ (1 − η_t γ(φ_t)/2)‖w_t − w*‖² (η ≥ 0, γ ≥ 0).
    Defined in chapters/rate.md."""
    a, plain = v.numbers(eta=(eta, 0.0, False), gamma=(gamma, 0.0, False))
    return _finish(1 - a["eta"] * a["gamma"] / 2, plain, "eta, gamma")


def iterations_bound(gamma, L, beta, eps):
    """(L + β)²/γ² · ln(1/ε): Theorem 3.2's remark O((L(φ₀) + β)²/γ(φ₀)² log(1/ε)) *without* its absolute constant,
    so only ratios between distributions (or φ₀) are meaningful. Needs γ > 0, L ≥ 0, β ≥ 0, 0 < ε < 1. Defined in
    chapters/rate.md."""
    a, plain = v.numbers(gamma=(gamma, 0.0, True), L=(L, 0.0, False), beta=(beta, 0.0, False),
                         eps=(eps, 0.0, True))
    if bool((a["eps"] >= 1).any()):
        raise ValueError(f"eps must lie in (0, 1), got {a['eps'].max().item()!r}")
    return _finish((a["L"] + a["beta"]) ** 2 / a["gamma"] ** 2 * torch.log(1 / a["eps"]), plain, "gamma, L, beta, eps")


# --------------------------------------------------------------------------------------------------------------
# Theorem 4.1: gradient descent learns the filter


def conv_condition_holds(gamma, L_cross):
    """Theorem 4.1's condition γ(φ₀) > 6·L_cross: a bool for numbers (or 0-d tensors), a bool tensor otherwise.
    Defined in chapters/conv_model.md."""
    a, plain = v.numbers(gamma=(gamma, -math.inf, False), L_cross=(L_cross, 0.0, False))
    holds = a["gamma"] > 6 * a["L_cross"]
    return bool(holds) if holds.dim() == 0 else holds


def _conv_margin(a) -> torch.Tensor:
    """γ − 6·L_cross, which Theorem 4.1 needs positive (ValueError naming gamma and L_cross otherwise)."""
    g_, l_ = torch.broadcast_tensors(a["gamma"], a["L_cross"])
    margin = g_ - 6 * l_
    bad = margin <= 0
    if bool(bad.any()):
        raise ValueError(f"gamma must exceed 6·L_cross (Theorem 4.1's condition γ(φ₀) > 6 L_cross fails): got "
                         f"gamma = {g_[bad].reshape(-1)[0].item():.6g}, "
                         f"6·L_cross = {6 * l_[bad].reshape(-1)[0].item():.6g}")
    return margin


def conv_step_cap(gamma, L, beta, L_cross):
    """Theorem 4.1's step-size cap (γ − 6L_cross)/(2(L + 10L_cross + 4β)²) (take γ, L at the φ that minimises it
    over [0, φ_t]). Numbers give a float, broadcastable tensors a tensor; L, β, L_cross ≥ 0. Raises ValueError
    naming gamma and L_cross when γ ≤ 6·L_cross, where the theorem gives no step (see :func:`conv_condition_holds`).
    Defined in chapters/conv_model.md.
    """
    a, plain = v.numbers(gamma=(gamma, 0.0, False), L=(L, 0.0, False), beta=(beta, 0.0, False),
                         L_cross=(L_cross, 0.0, False))
    margin = _conv_margin(a)
    if bool(((a["L"] + 10 * a["L_cross"] + 4 * a["beta"]) <= 0).any()):
        raise ValueError("L + 10·L_cross + 4·beta must be positive")
    return _finish(margin / (2 * (a["L"] + 10 * a["L_cross"] + 4 * a["beta"]) ** 2), plain, "gamma, L, beta, L_cross")


def conv_contraction_bound(eta, gamma, L_cross):
    """Theorem 4.1's contraction factor 1 − η(γ − 6L_cross)/2 (η ≥ 0, L_cross ≥ 0):
    ‖w_{t+1} − w*‖² ≤ (1 − η_t(γ(φ_t) − 6L_cross)/2)‖w_t − w*‖². Returned as is: when γ ≤ 6L_cross it is ≥ 1 and
    the theorem promises nothing. Defined in chapters/conv_model.md."""
    a, plain = v.numbers(eta=(eta, 0.0, False), gamma=(gamma, -math.inf, False), L_cross=(L_cross, 0.0, False))
    return _finish(1 - a["eta"] * (a["gamma"] - 6 * a["L_cross"]) / 2, plain, "eta, gamma, L_cross")


def conv_iterations_bound(gamma, L, beta, L_cross, eps):
    """(L + 10L_cross + 4β)²/(γ − 6L_cross)² · ln(1/ε): Theorem 4.1's O(·) iteration count without its absolute
    constant (only ratios are meaningful). Needs γ > 6L_cross (ValueError naming gamma and L_cross), L, β,
    L_cross ≥ 0 and 0 < ε < 1. Defined in chapters/conv_model.md."""
    a, plain = v.numbers(gamma=(gamma, 0.0, False), L=(L, 0.0, False), beta=(beta, 0.0, False),
                         L_cross=(L_cross, 0.0, False), eps=(eps, 0.0, True))
    if bool((a["eps"] >= 1).any()):
        raise ValueError(f"eps must lie in (0, 1), got {a['eps'].max().item()!r}")
    margin = _conv_margin(a)
    return _finish((a["L"] + 10 * a["L_cross"] + 4 * a["beta"]) ** 2 / margin ** 2 * torch.log(1 / a["eps"]), plain,
                   "gamma, L, beta, L_cross, eps")


# --------------------------------------------------------------------------------------------------------------
# Theorem 4.2: stochastic gradient descent learns the filter


def conv_phi_star(phis, gamma, L_cross) -> float:
    """φ* = max{φ : γ(φ) ≥ 6·L_cross} of Theorem 4.2 and Corollary 4.1, from γ at the increasing angles ``phis``
    in (0, π/2] (radians; φ_t = arcsin(‖w_t − w*‖/‖w*‖) never exceeds π/2): the largest grid angle where
    γ ≥ 6·L_cross, moved by linear interpolation to where γ crosses 6·L_cross before the next grid angle (that
    angle itself when the grid ends there). NaN when γ < 6·L_cross at every grid angle: φ* does not exist and
    Theorems 4.1–4.2 and Corollary 4.1 say nothing. Defined in chapters/sgd.md; used in chapters/init.md.
    """
    t, _ = v.angles(phis, "phis", dtype=torch.float64, high=math.pi / 2, open_low=True)
    g = v.tensor(gamma, "gamma", ndim=(0, 1), dtype=torch.float64).reshape(-1)
    a, _ = v.numbers(L_cross=(L_cross, 0.0, False))
    if g.shape != t.shape:
        raise ValueError(f"gamma must have one value per angle of phis, got {g.numel()} for {t.numel()} angles")
    if t.numel() > 1 and not bool((t[1:] > t[:-1]).all()):
        raise ValueError("phis must be increasing")
    level = 6 * float(a["L_cross"])
    above = torch.nonzero(g >= level).reshape(-1)
    if above.numel() == 0:
        return math.nan
    i = int(above[-1])
    if i == t.numel() - 1:
        return float(t[i])
    frac = (float(g[i]) - level) / (float(g[i]) - float(g[i + 1]))
    return float(t[i] + frac * (t[i + 1] - t[i]))


def _sgd_numbers(**named):
    """The arguments of the Theorem 4.2 formulas as float64 tensors, and κ = γ − 6·L_cross (> 0, or ValueError)."""
    a, plain = v.numbers(**named)
    return a, plain, _conv_margin(a)


def sgd_step(gamma, L_cross, B, eps, delta, w_star_norm=1.0):
    """Theorem 4.2's constant step η = Θ(ε²(γ(φ₁) − 6L_cross)‖w*‖²/B²) with the constant that the proof's last step
    needs for a failure probability δ: η = δ·ε²(γ − 6L_cross)‖w*‖²/B². Defined in chapters/sgd.md.

    The derivation (chapters/sgd.md): while ‖w_t − w*‖ ≤ ‖w*‖ sin φ₁, Theorem 4.1's inequality
    ⟨∇ℓ, u⟩ ≥ (γ(φ₁) − 6L_cross)‖u‖² and a stochastic gradient g with E g = ∇ℓ, ‖g‖ ≤ B give
    E‖u_{t+1}‖² ≤ (1 − 2ηκ)‖u_t‖² + η²B², κ = γ(φ₁) − 6L_cross, whose fixed point ηB²/(2κ) this η puts at
    δε²‖w*‖²/2; Markov's inequality (Lemma A.3) then turns E‖u_T‖² ≤ δε²‖w*‖² into a probability (see
    :func:`sgd_failure_bound`). Pass γ(φ₁), or the minimum of γ over [0, φ₁] where γ is not decreasing. Numbers give
    a float, tensors a tensor; needs γ > 6·L_cross (ValueError naming gamma and L_cross), B, ε, δ, ‖w*‖ > 0.
    """
    a, plain, kappa = _sgd_numbers(gamma=(gamma, 0.0, False), L_cross=(L_cross, 0.0, False), B=(B, 0.0, True),
                                   eps=(eps, 0.0, True), delta=(delta, 0.0, True),
                                   w_star_norm=(w_star_norm, 0.0, True))
    eta = a["delta"] * a["eps"] ** 2 * kappa * a["w_star_norm"] ** 2 / a["B"] ** 2
    return _finish(eta, plain, "gamma, L_cross, B, eps, delta, w_star_norm")


def sgd_iterations(gamma, L_cross, B, r0, eps, delta, w_star_norm=1.0):
    """Theorem 4.2's iteration count T = O(B²/(ε²(γ(φ₁) − 6L_cross)²‖w*‖²) · log(‖w₀ − w*‖/(ε‖w*‖))) with the
    constants of :func:`sgd_step`: with that step η, the smallest T with (1 − 2ηκ)^T r₀² ≤ δε²‖w*‖²/2, about
    ln(2r₀²/(δε²‖w*‖²))/(2ηκ) = B² ln(2r₀²/(δε²‖w*‖²))/(2δε²κ²‖w*‖²), κ = γ(φ₁) − 6L_cross, r₀ = ‖w₀ − w*‖
    (0 when r₀² ≤ δε²‖w*‖²/2 already). An int for numbers, an int64 tensor for tensors; the same conditions as
    :func:`sgd_step`, and r₀ > 0. Defined in chapters/sgd.md.
    """
    a, plain, kappa = _sgd_numbers(gamma=(gamma, 0.0, False), L_cross=(L_cross, 0.0, False), B=(B, 0.0, True),
                                   r0=(r0, 0.0, True), eps=(eps, 0.0, True), delta=(delta, 0.0, True),
                                   w_star_norm=(w_star_norm, 0.0, True))
    eta = a["delta"] * a["eps"] ** 2 * kappa * a["w_star_norm"] ** 2 / a["B"] ** 2
    target = a["delta"] * a["eps"] ** 2 * a["w_star_norm"] ** 2 / 2
    steps = torch.clamp(torch.log(a["r0"] ** 2 / target) / -torch.log1p(-2 * eta * kappa), min=0.0)
    steps = torch.ceil(_finish(steps, False, "gamma, L_cross, B, r0, eps, delta, w_star_norm")).to(torch.int64)
    return int(steps) if plain else steps


def sgd_failure_bound(eta, T, gamma, L_cross, B, r0, eps, w_star_norm=1.0):
    """Markov's bound on P(‖w_T − w*‖ > ε‖w*‖) after T steps of size η, for the runs that stay within
    ‖w*‖ sin φ₁ of w* (the event of Lemma A.2): ((1 − 2ηκ)^T r₀² + ηB²/(2κ)) / (ε²‖w*‖²), κ = γ(φ₁) − 6L_cross,
    the right side of E‖w_T − w*‖² ≤ (1 − 2ηκ)^T r₀² + ηB²/(2κ) (see :func:`sgd_step`) over ε²‖w*‖². At most δ
    for the η and T of :func:`sgd_step` and :func:`sgd_iterations`; a value ≥ 1 guarantees nothing. Needs
    0 < 2ηκ ≤ 1. Defined in chapters/sgd.md.
    """
    a, plain, kappa = _sgd_numbers(eta=(eta, 0.0, True), T=(T, 0.0, False), gamma=(gamma, 0.0, False),
                                   L_cross=(L_cross, 0.0, False), B=(B, 0.0, True), r0=(r0, 0.0, False),
                                   eps=(eps, 0.0, True), w_star_norm=(w_star_norm, 0.0, True))
    if bool((2 * a["eta"] * kappa > 1).any()):
        raise ValueError("eta is too large: the bound needs 2·eta·(gamma − 6·L_cross) ≤ 1")
    mean_square = (1 - 2 * a["eta"] * kappa) ** a["T"] * a["r0"] ** 2 + a["eta"] * a["B"] ** 2 / (2 * kappa)
    return _finish(mean_square / (a["eps"] * a["w_star_norm"]) ** 2, plain, "the arguments")


# --------------------------------------------------------------------------------------------------------------
# Theorem 4.1 along a run: the step schedule and the inequalities of the proof


def conv_step_schedule(phis, gamma, L, beta, L_cross):
    """Theorem 4.1's largest step as a function of φ_t, read on a grid: the callable φ_t ↦ η_t = min of
    :func:`conv_step_cap` over the grid angles up to the first one ≥ φ_t (a grid version of min_{0≤φ≤φ_t}, never
    larger than the cap at φ_t's grid neighbour; it misses only the part of [0, φ_t] below the grid's first angle,
    so start the grid near 0). Pass it as ``eta`` to :func:`filterlib.theory.close_patches_descent`. Defined in
    chapters/conv_model.md.

    ``phis`` an increasing 1-D array of angles in (0, π]; ``gamma`` and ``L`` the constants at those angles (same
    length); ``beta`` and ``L_cross`` numbers. Raises ValueError naming gamma and L_cross if γ ≤ 6L_cross at a grid
    angle (end the grid at φ₀, where the theorem needs γ(φ₀) > 6L_cross). The callable takes an (R,) tensor of
    angles and returns an (R,) float64 tensor; it raises ValueError for an angle beyond the grid.
    """
    grid, _ = v.angles(phis, "phis", dtype=torch.float64, open_low=True)
    if grid.numel() > 1 and bool((grid[1:] <= grid[:-1]).any()):
        raise ValueError("phis must be increasing")
    a, _ = v.numbers(gamma=(gamma, 0.0, False), L=(L, 0.0, False))
    if a["gamma"].shape != grid.shape or a["L"].shape != grid.shape:
        raise ValueError(f"gamma and L must have the shape of phis {tuple(grid.shape)}, got "
                         f"{tuple(a['gamma'].shape)} and {tuple(a['L'].shape)}")
    caps = conv_step_cap(a["gamma"].to(torch.float64), a["L"].to(torch.float64), float(beta), float(L_cross))
    running_min = torch.cummin(caps, dim=0).values

    def schedule(phi_t):
        t = torch.as_tensor(phi_t, dtype=torch.float64)
        if bool((t > grid[-1]).any()):
            raise ValueError(f"phi_t = {t.max().item():.6g} lies beyond the grid (largest angle "
                             f"{grid[-1].item():.6g}): Theorem 4.1 gives no step there")
        return running_min[torch.searchsorted(grid, t)]

    return schedule


def conv_proof_terms(w, w_star, moments) -> dict:
    """The quantities of Theorem 4.1's proof at filters ``w`` (u = w − w*), from the moments at w (a dict with
    "pos", "neg", "T1", "T1p", "T2", "T4", as from :func:`filterlib.theory.conv_moments`,
    :func:`filterlib.theory.close_patches_moments_at` or :func:`filterlib.theory.close_patches_descent`). Defined in
    chapters/conv_model.md.

    With ∇ℓ = pos·u + (T1 + T1p + neg)·w − (T2 + T1p + T4)·w* (:func:`filterlib.theory.four_region_gradient`):

    * ``"inner"`` = ⟨∇ℓ, u⟩ = ``"quadratic"`` + ``"dropped"`` + ``"cross"``, where ``"quadratic"`` = uᵀ pos u,
      ``"dropped"`` = uᵀ(T1p + neg)w (the two terms the proof drops as non-negative) and ``"cross"`` =
      uᵀT1 w − uᵀ(T2 + T1p + T4)w*;
    * ``"cross_bound"`` = (2‖T1‖ + ‖T2‖ + ‖T1p‖ + ‖T4‖)‖u‖‖w*‖, the proof's bound cross ≥ −cross_bound (Cauchy–
      Schwarz and ‖u‖ ≤ ‖w*‖), and ``"cross_sum"`` = ‖T1‖ + ‖T2‖ + ‖T4‖ (spectral norms), the left side of
      Assumption 4.2 at θ;
    * ``"gradient_norm"`` = ‖∇ℓ‖, ``"u_norm"`` = ‖u‖, ``"theta"`` = θ(w, w*) in [0, π].

    ``w`` (..., p) with the moments (..., p, p); returns float64 tensors of shape w.shape[:-1].
    """
    w = v.tensor(w, "w", dtype=torch.float64)
    w_star = v.vector(w_star, "w_star", p=w.shape[-1], nonzero=True).to(torch.float64)
    M = {key: v.tensor(moments[key], f"moments['{key}']", dtype=torch.float64)
         for key in ("pos", "neg", "T1", "T1p", "T2", "T4")}
    u = w - w_star
    s = w_star.expand_as(w)
    mv = lambda A, x: (A @ x[..., None])[..., 0]
    dot = lambda x, y: (x * y).sum(-1)
    sv = lambda A: torch.linalg.matrix_norm(A, ord=2)
    quadratic = dot(u, mv(M["pos"], u))
    dropped = dot(u, mv(M["T1p"] + M["neg"], w))
    cross = dot(u, mv(M["T1"], w)) - dot(u, mv(M["T2"] + M["T1p"] + M["T4"], s))
    gradient = mv(M["pos"], u) + mv(M["T1"] + M["T1p"] + M["neg"], w) - mv(M["T2"] + M["T1p"] + M["T4"], s)
    u_norm = u.norm(dim=-1)
    s_hat = s / w_star.norm()
    along = dot(w, s_hat)
    theta = torch.atan2((w - along[..., None] * s_hat).norm(dim=-1), along)     # accurate for tiny angles
    return {"inner": dot(gradient, u), "quadratic": quadratic, "dropped": dropped, "cross": cross,
            "cross_bound": (2 * sv(M["T1"]) + sv(M["T2"]) + sv(M["T1p"]) + sv(M["T4"])) * u_norm * w_star.norm(),
            "cross_sum": sv(M["T1"]) + sv(M["T2"]) + sv(M["T4"]),
            "gradient_norm": gradient.norm(dim=-1), "u_norm": u_norm, "theta": theta}


def conv_proof_checks(run, w_star, phis, gamma, L, beta, L_cross) -> dict:
    """The inequalities of Theorem 4.1's proof along a run of :func:`filterlib.theory.close_patches_descent`, each
    as a pair (smaller, larger) of 1-D float64 tensors over the steps taken (every t and run r with
    run["active"]): the proof needs smaller ≤ larger at every step. Defined in chapters/conv_model.md.

    With u = w_t − w*, θ_t = θ(w_t, w*), φ_t = arcsin(‖u‖/‖w*‖), m_t = γ(φ_t) − 6L_cross and the terms of
    :func:`conv_proof_terms`:

    * ``"dropped"``: 0 ≤ uᵀ(T1ᵀ + E[Z_S(w,−w*) Z_S(w,−w*)ᵀ])w (the dropped terms);
    * ``"quadratic"``: γ(φ_t)‖u‖² ≤ uᵀ E[Z_S(w,w*) Z_S(w,w*)ᵀ] u;
    * ``"cross"``: −(2‖T1‖ + ‖T2‖ + ‖T1ᵀ‖ + ‖T4‖)‖u‖‖w*‖ ≤ the cross terms;
    * ``"assumption"``: (3‖T1‖ + ‖T2‖ + ‖T4‖)‖u‖‖w*‖ ≤ 3L_cross θ_t ‖u‖‖w*‖ (Assumption 4.2 at θ_t);
    * ``"angle"``: θ_t‖w*‖ ≤ 2‖u‖;
    * ``"inner"``: m_t‖u‖² ≤ ⟨∇ℓ, u⟩;
    * ``"gradient"``: ‖∇ℓ‖ ≤ (L(φ_t) + 10L_cross + 4β)‖u‖;
    * ``"contraction"``: ‖u_{t+1}‖² ≤ (1 − η_t m_t/2)‖u_t‖² (the theorem's conclusion).

    ``phis`` (increasing), ``gamma`` and ``L``: the constants on a grid of angles covering the run's φ_t, read
    off by linear interpolation (so ``"quadratic"``, ``"inner"``, ``"gradient"`` and ``"contraction"`` carry
    the interpolation's error); ``beta`` and ``L_cross``: numbers.
    """
    grid = v.tensor(phis, "phis", ndim=1, dtype=torch.float64)
    gam = v.tensor(gamma, "gamma", ndim=1, dtype=torch.float64)
    L_ = v.tensor(L, "L", ndim=1, dtype=torch.float64)
    if not (grid.shape == gam.shape == L_.shape):
        raise ValueError(f"phis, gamma and L must have one shape, got {tuple(grid.shape)}, {tuple(gam.shape)} "
                         f"and {tuple(L_.shape)}")
    a, _ = v.numbers(beta=(beta, 0.0, False), L_cross=(L_cross, 0.0, False))
    beta, L_cross = float(a["beta"]), float(a["L_cross"])
    w_star = v.vector(w_star, "w_star", nonzero=True).to(torch.float64)
    w = run["w"].to(torch.float64)
    terms = conv_proof_terms(w[:-1], w_star, run["moments"])
    active = run["active"]
    scale = float(w_star.norm())
    u, th = terms["u_norm"], terms["theta"]
    phi_t = torch.arcsin((u / scale).clamp(max=1.0))
    read = lambda values: torch.from_numpy(np.interp(phi_t.numpy(), grid.numpy(), values.numpy()))
    gam_t, L_t = read(gam), read(L_)
    m_t = gam_t - 6 * L_cross
    u_next = (w[1:] - w_star).norm(dim=-1)
    pairs = {"dropped": (torch.zeros_like(u), terms["dropped"]),
             "quadratic": (gam_t * u ** 2, terms["quadratic"]),
             "cross": (-terms["cross_bound"], terms["cross"]),
             "assumption": (terms["cross_bound"], 3 * L_cross * th * u * scale),
             "angle": (th * scale, 2 * u),
             "inner": (m_t * u ** 2, terms["inner"]),
             "gradient": (terms["gradient_norm"], (L_t + 10 * L_cross + 4 * beta) * u),
             "contraction": (u_next ** 2, (1 - run["eta"] * m_t / 2) * u ** 2)}
    return {name: (small[active], large[active]) for name, (small, large) in pairs.items()}
