"""Random initialization of the filter: Theorem 4.4 and Corollary 4.1 (chapters/init.md).

Theorem 4.4 says that a start w₀ drawn uniformly from the ball of radius α‖w*‖, α ≤ 1/√(2p), satisfies
‖w₀ − w*‖ ≤ √(1 − α²)‖w*‖ with probability at least ½ − α√(p/2); Corollary 4.1 takes α = cos φ* and concludes
that the start is good (φ₀ ≤ φ*) with probability > ¼ when cos φ* < 1/√(8p). This module has

* :func:`ball`, :func:`sphere`: seeded samplers of such starts (uniform in the ball, uniform on the sphere), and
  :func:`directions`, the uniform unit directions they are made of;
* :func:`success_probability_sphere`: the exact P(‖r u − w*‖ < ‖w*‖) for u uniform on the sphere,
  ½ I_{1−t²}((p − 1)/2, ½) with t = r/(2‖w*‖) (derived in chapters/init.md; not in the paper), I the
  regularized incomplete beta function, :func:`betainc`;
* :func:`success_probability_ball`: the exact probability of Theorem 4.4's event, by quadrature over the radius;
* :func:`theorem_4_4_bound`: the paper's lower bound ½ − α√(p/2);
* :func:`restart_success`: 1 − (1 − q)^m, the chance that one of m independent starts is good.

Radii are in units of ‖w*‖ throughout (the probabilities do not depend on w* otherwise, by rotation invariance).
Numbers in give Python floats out; arrays or tensors give float64 tensors (a torch tensor keeps its dtype and
device).
"""
from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from . import _validate as v
from . import rng

_QUAD_NODES = 96          # Gauss–Legendre nodes in success_probability_ball (the integrand is smooth; see there)


# --------------------------------------------------------------------------------------------------------------
# Samplers


def directions(m: int, p: int, generator: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    """m directions uniform on the unit sphere S^{p−1}, shape (m, p): normalised Gaussian vectors drawn from
    ``generator`` on its device (a zero draw is redrawn). No checks: :func:`ball` and :func:`sphere` validate.

    Used in chapters/init.md (through :func:`ball` and :func:`sphere`) and chapters/mnist.md (the starts of
    :func:`filterlib.teacher_student.init_at_distance`).
    """
    g = generator
    x = torch.randn(m, p, generator=g, device=g.device, dtype=dtype)
    norms = x.norm(dim=1, keepdim=True)
    while bool((norms == 0).any()):                                   # probability zero (p = 1 in float32 at worst)
        bad = norms[:, 0] == 0
        x[bad] = torch.randn(int(bad.sum()), p, generator=g, device=g.device, dtype=dtype)
        norms = x.norm(dim=1, keepdim=True)
    return x / norms


def _sampler_args(m, p, radius, dtype):
    m, p = v.positive_int(m, "m"), v.positive_int(p, "p")
    radius = v.positive_float(radius, "radius")
    dtype = v.float_dtype(dtype)
    return m, p, radius, dtype


def ball(m: int, p: int, radius: float, *, generator: torch.Generator | None = None, seed: int | None = None,
         dtype: torch.dtype | None = None) -> torch.Tensor:
    """m starts uniform in the p-dimensional ball of the given radius centred at 0 (Theorem 4.4): shape (m, p).

    Each start is radius·U^{1/p}·u with u a normalised Gaussian vector and U ~ U[0, 1] independent. Pass either a
    ``generator`` (its device is used) or a ``seed``; ``dtype`` defaults to the filterlib default. Defined in
    chapters/init.md.
    """
    m, p, radius, dtype = _sampler_args(m, p, radius, dtype)
    g = rng.resolve_generator(generator, seed)
    u = directions(m, p, g, dtype)
    r = radius * torch.rand(m, 1, generator=g, device=g.device, dtype=dtype) ** (1.0 / p)
    return r * u


def sphere(m: int, p: int, radius: float, *, generator: torch.Generator | None = None, seed: int | None = None,
           dtype: torch.dtype | None = None) -> torch.Tensor:
    """m starts uniform on the sphere of the given radius centred at 0: shape (m, p) (the starts w₀ = r·u of
    :func:`success_probability_sphere`). Arguments as for :func:`ball`. Used in chapters/init.md."""
    m, p, radius, dtype = _sampler_args(m, p, radius, dtype)
    g = rng.resolve_generator(generator, seed)
    return radius * directions(m, p, g, dtype)


# --------------------------------------------------------------------------------------------------------------
# Input checks and the regularized incomplete beta function


def _values(x, name: str, *, low: float, high: float, open_low: bool, open_high: bool):
    """x as a float64 tensor, with (is_python_number, dtype, device) to restore on output; values checked."""
    if isinstance(x, bool):
        raise TypeError(f"{name} must be a real number or an array of real numbers, got {x!r}")
    plain = isinstance(x, numbers.Real)
    out_dtype, out_device = torch.float64, None
    if isinstance(x, torch.Tensor):
        t = v.tensor(x, name)
        out_dtype, out_device = t.dtype, t.device
        t = t.to(dtype=torch.float64, device="cpu")
    else:
        t = v.tensor(np.asarray(x, dtype=np.float64) if not plain else float(x), name, dtype=torch.float64)
    bad = (t <= low if open_low else t < low) | (t >= high if open_high else t > high)
    if bool(bad.any()):
        interval = ("(" if open_low else "[") + f"{low:g}, {high:g}" + (")" if open_high else "]")
        raise ValueError(f"{name} must lie in {interval}, got {t[bad].reshape(-1)[0].item()!r}")
    return t, (plain, out_dtype, out_device)


def _out(t: torch.Tensor, how):
    plain, dtype, device = how
    if plain:
        return float(t)
    return t.to(dtype=dtype, device=device)


def _betacf(a: torch.Tensor, b: torch.Tensor, x: torch.Tensor, max_iter: int = 10_000) -> torch.Tensor:
    """Continued fraction of the incomplete beta function (modified Lentz; Numerical Recipes' betacf),
    elementwise on float64 tensors; converges fast for x < (a + 1)/(a + b + 2)."""
    tiny, eps = 1e-300, 1e-16
    qab, qap, qam = a + b, a + 1, a - 1
    c = torch.ones_like(x)
    d = 1 - qab * x / qap
    d = torch.where(d.abs() < tiny, torch.full_like(d, tiny), d)
    d = 1 / d
    h = d.clone()
    done = torch.zeros_like(x, dtype=torch.bool)
    for m in range(1, max_iter + 1):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1 + aa * d
            d = torch.where(d.abs() < tiny, torch.full_like(d, tiny), d)
            c = 1 + aa / c
            c = torch.where(c.abs() < tiny, torch.full_like(c, tiny), c)
            d = 1 / d
            delta = d * c
            h = torch.where(done, h, h * delta)
        done = done | ((delta - 1).abs() < eps)
        if bool(done.all()):
            return h
    raise RuntimeError("the incomplete beta continued fraction did not converge")   # not reached for p ≲ 10⁶


def betainc(a, b, x) -> torch.Tensor:
    """Regularized incomplete beta function I_x(a, b) = B(x; a, b)/B(a, b) for a, b > 0 and x ∈ [0, 1], elementwise.

    ``a``, ``b`` are numbers or tensors broadcastable with ``x``; the result is a float64 tensor. Accurate to about
    1e-13 for a, b ≤ 300 (tested against closed forms and quadrature). No checks on the arguments' ranges. It gives
    the exact success probabilities of chapters/init.md (sin²θ of a uniform direction is Beta((p − 1)/2, ½)) and
    the uniform-direction test of :func:`filterlib.selfcheck.check_ball_sampler`.
    """
    x = torch.as_tensor(x, dtype=torch.float64)
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    a, b, x = torch.broadcast_tensors(a, b, x)
    inner = (x > 0) & (x < 1)
    xs = torch.where(inner, x, torch.full_like(x, 0.5))                # placeholders at the endpoints
    log_front = (torch.lgamma(a + b) - torch.lgamma(a) - torch.lgamma(b)
                 + a * torch.log(xs) + b * torch.log1p(-xs))
    front = torch.exp(log_front)
    direct = xs < (a + 1) / (a + b + 2)
    aa, bb, xx = torch.where(direct, a, b), torch.where(direct, b, a), torch.where(direct, xs, 1 - xs)
    frac = front * _betacf(aa, bb, xx) / aa
    val = torch.where(direct, frac, 1 - frac)
    return torch.where(inner, val, torch.where(x >= 1, torch.ones_like(x), torch.zeros_like(x)))


# --------------------------------------------------------------------------------------------------------------
# Exact success probabilities and the paper's bound


def _sphere_prob(p: int, r: torch.Tensor) -> torch.Tensor:
    """P(cos θ(u, w*) > r/2) for u uniform on S^{p−1} (r in units of ‖w*‖, r > 0), float64, elementwise."""
    t = r / 2
    if p == 1:                                                        # u = ±1 with probability ½ each
        return torch.where(t < 1, torch.full_like(t, 0.5), torch.zeros_like(t))
    inside = t < 1
    t2 = torch.where(inside, t * t, torch.ones_like(t))
    # ½ I_{1−t²}((p−1)/2, ½) = ½ (1 − I_{t²}(½, (p−1)/2)): the second form keeps t when t² is tiny (1 − t² = 1)
    prob = torch.where(t2 < 0.5, 0.5 * (1 - betainc(0.5, (p - 1) / 2, t2)), 0.5 * betainc((p - 1) / 2, 0.5, 1 - t2))
    return torch.where(inside, prob, torch.zeros_like(t))


def success_probability_sphere(p: int, r):
    """Exact P(‖r·u − w*‖ < ‖w*‖) for u uniform on the unit sphere of R^p, with r in units of ‖w*‖ (chapters/init.md):

    ‖ru − w*‖ < ‖w*‖ ⟺ cos θ(u, w*) > t = r/2, and sin²θ ~ Beta((p − 1)/2, ½), so the probability is
    ½ I_{1−t²}((p − 1)/2, ½) for r < 2 and 0 for r ≥ 2 (p = 1: ½ for r < 2). It tends to ½ as r → 0.
    ``r`` > 0 is a number (returns a float) or an array (returns a tensor); ``p`` ≥ 1 an int. E.g. p = 10, r = 0.5
    gives 0.2292.
    """
    p = v.positive_int(p, "p")
    r, how = _values(r, "r", low=0.0, high=math.inf, open_low=True, open_high=True)
    return _out(_sphere_prob(p, r), how)


def success_probability_ball(p: int, alpha):
    """Exact probability of Theorem 4.4's event ‖w₀ − w*‖ ≤ √(1 − α²)‖w*‖ for w₀ uniform in the ball of radius
    α‖w*‖ (chapters/init.md).

    With ‖w*‖ = 1 and w₀ = r·u, the event is cos θ(u, w*) ≥ t(r) = (r² + α²)/(2r), possible only for
    r ≥ r₀ = 1 − √(1 − α²); so the probability is ∫_{r₀}^{α} (p r^{p−1}/α^p) · P_sphere(cos θ ≥ t(r)) dr, with the
    sphere probability ½ I_{1−t²}((p − 1)/2, ½) of :func:`success_probability_sphere`. Gauss–Legendre quadrature
    (96 nodes) on [r₀, r₁] with r = r₀ + (r₁ − r₀)s² (smooth at r₀) and on [r₁, α], r₁ = min(α, 16 r₀) (the
    probability's steep rise for small α lies in the first piece), is accurate to about 1e-13 (3e-15 against the
    closed form for p = 3 over α ∈ [1e-8, 1]; 96 and 400 nodes differ by ≤ 1.2e-12 for p ≤ 200).

    ``alpha`` in (0, 1] is a number (returns a float) or an array (returns a tensor, vectorised); ``p`` ≥ 1 an int.
    The probability is 0 at α = 1 and tends to ½ as α → 0.
    """
    p = v.positive_int(p, "p")
    a, how = _values(alpha, "alpha", low=0.0, high=1.0, open_low=True, open_high=False)
    shape = a.shape
    a = a.reshape(-1, 1)
    tiny = a[:, 0] < 1e-100                    # P = ½ − O(α√p): ½ to double precision; α² would underflow below
    a = torch.where(a < 1e-100, torch.full_like(a, 1e-100), a)
    nodes, weights = np.polynomial.legendre.leggauss(_QUAD_NODES)
    s = torch.as_tensor((nodes + 1) / 2, dtype=torch.float64)[None, :]            # in (0, 1)
    wq = torch.as_tensor(weights / 2, dtype=torch.float64)[None, :]
    r0 = a * a / (1 + torch.sqrt(1 - a * a))                                       # 1 − √(1 − α²) without cancellation
    # For small α the sphere probability climbs from 0 to ≈ ½ within r ∈ [r₀, a few r₀]: integrate that layer
    # separately, [r₀, r₁] with r = r₀ + (r₁ − r₀)s² (smooth at r₀), then [r₁, α] with r linear in s.
    r1 = torch.minimum(a, 16 * r0)
    pieces = [(r0 + (r1 - r0) * s * s, 2 * s * (r1 - r0)), (r1 + (a - r1) * s, (a - r1) * torch.ones_like(s))]
    out = torch.zeros_like(a[:, 0])
    for r, jac in pieces:
        t = (r * r + a * a) / (2 * r)
        density = p * (r / a) ** (p - 1) / a
        prob = _sphere_prob(p, 2 * t.clamp(max=1.0))                               # P(cos θ > t), t ≤ 1 here
        out = out + (wq * jac * density * prob).sum(dim=1)
    out = torch.where(tiny, torch.full_like(out, 0.5), out)
    return _out(out.reshape(shape), how)


def theorem_4_4_bound(p: int, alpha):
    """The paper's lower bound ½ − α√(p/2) on the probability of Theorem 4.4's event (also Corollary 4.1 with
    α = cos φ*). The theorem assumes α ≤ 1/√(2p), where the bound lies in [0, ½); for larger α it is returned as is,
    possibly negative (then it says nothing). ``alpha`` in (0, 1]: a number (float out) or an array (tensor out).
    Used in chapters/init.md."""
    p = v.positive_int(p, "p")
    a, how = _values(alpha, "alpha", low=0.0, high=1.0, open_low=True, open_high=False)
    return _out(0.5 - a * math.sqrt(p / 2), how)


def restart_success(q, m: int):
    """1 − (1 − q)^m: the probability that at least one of m independent starts is good when each is good with
    probability q ∈ [0, 1] (random restarts, after Theorem 4.4). ``q`` a number (float out) or an array (tensor);
    ``m`` ≥ 1 an int. Used in chapters/init.md."""
    m = v.positive_int(m, "m")
    q, how = _values(q, "q", low=0.0, high=1.0, open_low=False, open_high=False)
    return _out(1 - (1 - q) ** m, how)
