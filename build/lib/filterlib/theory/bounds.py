"""The formulas of Theorems 3.2 and 4.1: the step-size cap, the contraction factor and the iteration count of
gradient descent, given the constants γ, L, β (and L_cross) estimated by :mod:`filterlib.theory.estimators`
or taken from :mod:`filterlib.theory.closed_forms`; and φ_t, the angle bound of Theorem 3.2.

Arguments are numbers (the result is a float) or broadcastable tensors (the result is a tensor); each is
checked by :func:`filterlib._validate.numbers`.
"""
from __future__ import annotations

import math

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
