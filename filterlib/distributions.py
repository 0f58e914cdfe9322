"""Input distributions 𝒵 of patches, each a seeded sampler returning Z of shape (n, k, p).

Foundation chapter (chapters/gd_gaussian.md) uses :func:`gaussian`; Parts I–II add the paper's laws here:

* :func:`angular_mixture`: unit patches with a truncated-Gaussian angle to ±w_star (Fig. 3(a), Def. 3.1, Thm 3.2).
* :func:`uniform_cube`, :func:`laplace`: non-rotation-invariant laws that satisfy Theorem 3.1's assumption.
* :func:`degenerate_lines`: a law on a few lines, where A_{w,w*} is singular (negative control of Theorem 3.1).
* :func:`close_patches`: k close unit patches around a base patch (Fig. 3(b), Thm 4.1, Thm 4.3).

Every sampler takes either a ``generator`` (its device is used) or a ``seed``; ``dtype`` defaults to
:func:`filterlib.config.default_dtype`. Angles are drawn in float64 and cast at the end.
"""
from __future__ import annotations

import math

import torch

from . import _validate as v
from . import rng


def gaussian(n: int, k: int, p: int, *, generator: torch.Generator | None = None, seed: int | None = None,
             dtype: torch.dtype | None = None) -> torch.Tensor:
    """n samples of k i.i.d. N(0, I_p) patches (non-overlapping Gaussian patches, the Gaussian input of the
    paper's Section 3 and of the closed forms in filterlib.theory).

    Pass either a ``generator`` (its device is used) or a ``seed`` (device from ``FILTERLIB_DEVICE``). Defined in
    chapters/gd_gaussian.md; used in most chapters.
    """
    n, k, p = v.positive_int(n, "n"), v.positive_int(k, "k"), v.positive_int(p, "p")
    g = rng.resolve_generator(generator, seed)
    return torch.randn(n, k, p, generator=g, device=g.device, dtype=v.float_dtype(dtype))


# --------------------------------------------------------------------------------------------------------------
# Helpers shared by the samplers below.


def _symmetric_truncated_normal(n: int, std: float, half_width: float, g: torch.Generator) -> torch.Tensor:
    """n exact draws of TN(0, std²; [−half_width, half_width]) in float64 on g's device (no clipping).

    When the interval is wide compared with ``std`` (half_width/std > 1) the inverse CDF is used on the lower
    half, u ~ U(Φ(−h/std), ½), x = std·Φ⁻¹(u), with a random sign: the lower tail of Φ has no cancellation,
    so this is accurate even for std = 0.01. When the interval is narrow compared with ``std`` (the law is
    close to uniform and Φ(−h/std) ≈ ½ would lose precision) rejection from U[−h, h] with acceptance
    probability exp(−x²/(2 std²)) ≥ e^{−1/2} is used. Both samplers are exact.
    """
    dev, f64 = g.device, torch.float64
    if half_width / std > 1.0:
        lo = torch.special.ndtr(torch.tensor(-half_width / std, dtype=f64, device=dev))
        u = lo + (0.5 - lo) * torch.rand(n, generator=g, dtype=f64, device=dev)
        x = std * torch.special.ndtri(u)                     # in [−h, 0]
        x = x.clamp(min=-half_width)                         # round-off guard only (|excess| ≲ 1e-15)
        sign = torch.randint(0, 2, (n,), generator=g, device=dev).to(f64) * 2 - 1
        return sign * x
    out = torch.empty(0, dtype=f64, device=dev)
    while out.numel() < n:
        m = max(16, int(1.7 * (n - out.numel())) + 16)       # acceptance ≥ 0.61, so usually one round
        x = (2 * torch.rand(m, generator=g, dtype=f64, device=dev) - 1) * half_width
        keep = torch.rand(m, generator=g, dtype=f64, device=dev) < torch.exp(-0.5 * (x / std) ** 2)
        out = torch.cat([out, x[keep]])
    return out[:n]


def _mixture_angles(n: int, sigma: float, g: torch.Generator) -> torch.Tensor:
    """Signed angles α (float64) of the Fig. 3(a) law: ½ TN(0, σ²; [−π/2, π/2]) + ½ (π + TN(0, σ²; [−π/2, π/2]))."""
    alpha = _symmetric_truncated_normal(n, sigma, math.pi / 2, g)
    around_minus = torch.randint(0, 2, (n,), generator=g, device=g.device).to(torch.float64)
    return alpha + math.pi * around_minus


def _unit_teacher(w_star, p: int | None, device) -> tuple[torch.Tensor, int]:
    """ŵ = w_star/‖w_star‖ in float64 (default e1) and the patch size p it fixes."""
    if w_star is None:
        p = 2 if p is None else v.positive_int(p, "p")
        e1 = torch.zeros(p, dtype=torch.float64, device=device)
        e1[0] = 1.0
        return e1, p
    w = v.tensor(w_star, "w_star", ndim=1, dtype=torch.float64, device=device)
    if p is not None:
        v.check_size(w, v.positive_int(p, "p"), "w_star")
    v.nonzero_rows(w, "w_star")
    return w / w.norm(), w.shape[0]


# --------------------------------------------------------------------------------------------------------------
# Samplers of Part I (one neuron, Fig. 3(a), Theorem 3.1) and Part II (close patches, Fig. 3(b)).


def angular_mixture(n: int, sigma: float, *, p: int | None = None, w_star=None,
                    generator: torch.Generator | None = None, seed: int | None = None,
                    dtype: torch.dtype | None = None) -> torch.Tensor:
    """The Fig. 3(a) law: n unit-norm patches (k = 1) of shape (n, 1, p) whose angle to w_star is a mixture of
    truncated Gaussians; small σ is spiky, large σ is close to rotation invariant (Def. 3.1, Thm 3.2). The paper
    leaves some details open (p, the second component's interval, σ as a standard deviation); the choices below
    are this book's reading, stated as a definition in chapters/smoothness.md. Used in chapters/one_neuron.md,
    chapters/smoothness.md and chapters/rate.md.

    The signed angle α to ŵ = w_star/‖w_star‖ is, with probability ½, TN(0, σ²; [−π/2, π/2]) (a normal with
    *standard deviation* σ truncated to the half circle around w_star, sampled exactly), and with probability ½
    π + TN(0, σ²; [−π/2, π/2]) (the half circle around −w_star). Then

    * p = 2: Z = cos α ŵ + sin α ŵ⊥, with ŵ⊥ the +90° rotation of ŵ;
    * p > 2: Z = cos α ŵ + sin α v, with v uniform on the unit sphere of the orthogonal complement of ŵ.

    ``p`` defaults to 2, or to the size of ``w_star`` when it is given; ``w_star`` defaults to e1. Pass either a
    ``generator`` (its device is used) or a ``seed``.
    """
    n = v.positive_int(n, "n")
    sigma = v.positive_float(sigma, "sigma")
    dtype = v.float_dtype(dtype)
    g = rng.resolve_generator(generator, seed)
    what, p = _unit_teacher(w_star, p, g.device)
    if p < 2:
        raise ValueError(f"p must be at least 2 (an angle needs a plane), got {p}")
    alpha = _mixture_angles(n, sigma, g)
    if p == 2:
        perp = torch.stack([-what[1], what[0]]).expand(n, 2)
    else:
        x = torch.randn(n, p, generator=g, dtype=torch.float64, device=g.device)
        x = x - (x @ what)[:, None] * what
        norms = x.norm(dim=1, keepdim=True)
        while bool((norms == 0).any()):                       # probability zero; redraw rather than divide by 0
            bad = (norms[:, 0] == 0)
            y = torch.randn(int(bad.sum()), p, generator=g, dtype=torch.float64, device=g.device)
            x[bad] = y - (y @ what)[:, None] * what
            norms = x.norm(dim=1, keepdim=True)
        perp = x / norms
    Z = torch.cos(alpha)[:, None] * what + torch.sin(alpha)[:, None] * perp
    return Z.to(dtype).unsqueeze(1)


def angular_mixture_density(alpha, sigma: float) -> torch.Tensor:
    """Density (per radian) of the signed angle α of :func:`angular_mixture` at ``alpha`` (radians, any real; taken
    modulo 2π into [−π/2, 3π/2)), in float64: ½ TN(0, σ²; [−π/2, π/2]) + ½ (π + the same), Fig. 3(a) law.

    At the boundary of w*, α = ±π/2, each side of the point gets one truncated component, so the density there is
    ½·φ_σ(π/2)/(2Φ(π/(2σ)) − 1), which sets Part II's L_cross for close patches (chapters/conv_model.md,
    :func:`filterlib.theory.close_patches_cross_limit`). Returns a tensor of ``alpha``'s shape. Used in
    chapters/conv_model.md.
    """
    sigma = v.positive_float(sigma, "sigma")
    a = v.tensor(alpha, "alpha", dtype=torch.float64)
    a = torch.remainder(a + math.pi / 2, 2 * math.pi) - math.pi / 2           # in [−π/2, 3π/2)
    x = torch.where(a <= math.pi / 2, a, a - math.pi)                          # offset from 0 or from π
    mass = math.erf(math.pi / (2 * sigma * math.sqrt(2)))                      # P(|N(0, σ²)| ≤ π/2)
    return 0.5 * torch.exp(-0.5 * (x / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi) * mass)


def uniform_cube(n: int, k: int, p: int, *, generator: torch.Generator | None = None, seed: int | None = None,
                 dtype: torch.dtype | None = None) -> torch.Tensor:
    """n samples of k patches with i.i.d. U[−1, 1] entries (variance 1/3): a bounded, non-rotation-invariant law
    that satisfies Theorem 3.1's non-degeneracy assumption. Used in chapters/one_neuron.md, chapters/smoothness.md
    and chapters/rate.md."""
    n, k, p = v.positive_int(n, "n"), v.positive_int(k, "k"), v.positive_int(p, "p")
    dtype = v.float_dtype(dtype)
    g = rng.resolve_generator(generator, seed)
    return 2 * torch.rand(n, k, p, generator=g, device=g.device, dtype=dtype) - 1


def laplace(n: int, k: int, p: int, *, generator: torch.Generator | None = None, seed: int | None = None,
            dtype: torch.dtype | None = None) -> torch.Tensor:
    """n samples of k patches with i.i.d. Laplace(0, 1) entries (density ½e^{−|x|}, variance 2): a heavy-tailed,
    non-rotation-invariant law for Theorem 3.1. Drawn as the difference of two Exp(1) variables. Used in
    chapters/one_neuron.md, chapters/smoothness.md, chapters/rate.md and chapters/conv_model.md."""
    n, k, p = v.positive_int(n, "n"), v.positive_int(k, "k"), v.positive_int(p, "p")
    dtype = v.float_dtype(dtype)
    g = rng.resolve_generator(generator, seed)
    e = torch.empty(2, n, k, p, device=g.device, dtype=torch.float64).exponential_(1.0, generator=g)
    return (e[0] - e[1]).to(dtype)


def degenerate_lines(n: int, directions, *, generator: torch.Generator | None = None, seed: int | None = None,
                     dtype: torch.dtype | None = None) -> torch.Tensor:
    """A degenerate law on a few lines through 0 (negative control of Theorem 3.1): shape (n, 1, p).

    Z = s·d_J with J uniform over the m rows of ``directions`` (shape (m, p), used as given, not normalised) and
    s ~ N(0, 1). Every second moment E[ZZᵀ 1{…}] has rank ≤ m, so for m < p the matrix A_{w,w*} is singular and
    Theorem 3.1's assumption fails. Used in chapters/one_neuron.md.
    """
    n = v.positive_int(n, "n")
    dtype = v.float_dtype(dtype)
    g = rng.resolve_generator(generator, seed)
    d = v.tensor(directions, "directions", ndim=2, dtype=dtype, device=g.device)
    v.nonzero_rows(d, "directions")
    J = torch.randint(0, d.shape[0], (n,), generator=g, device=g.device)
    s = torch.randn(n, generator=g, device=g.device, dtype=dtype)
    return (s[:, None] * d[J]).unsqueeze(1)


def close_patches(n: int, k: int, sigma2: float, *, base_sigma: float = 1.0, w_star=None,
                  generator: torch.Generator | None = None, seed: int | None = None,
                  dtype: torch.dtype | None = None) -> torch.Tensor:
    """The Fig. 3(b) law: n samples of k close unit patches in the plane, shape (n, k, 2) (Part II, Thm 4.1 and
    Thm 4.3: smaller σ² means closer patches, smaller L_cross and ρ). Defined in chapters/conv_model.md; used in
    chapters/closeness.md and chapters/init.md.

    A base unit patch is drawn from :func:`angular_mixture` with σ = ``base_sigma`` (angle α to w_star, default
    e1); patch i is the unit vector at angle α + δ_i from ŵ, with δ_i i.i.d. TN(0, σ²; [−π, π)) where ``sigma2``
    is the *variance* σ² (sampled exactly). The base patch itself is not returned.
    """
    n, k = v.positive_int(n, "n"), v.positive_int(k, "k")
    sigma2 = v.positive_float(sigma2, "sigma2")
    base_sigma = v.positive_float(base_sigma, "base_sigma")
    dtype = v.float_dtype(dtype)
    g = rng.resolve_generator(generator, seed)
    what, _ = _unit_teacher(w_star, 2, g.device)
    alpha = _mixture_angles(n, base_sigma, g)
    delta = _symmetric_truncated_normal(n * k, math.sqrt(sigma2), math.pi, g).reshape(n, k)
    ang = alpha[:, None] + delta
    perp = torch.stack([-what[1], what[0]])
    Z = torch.cos(ang)[..., None] * what + torch.sin(ang)[..., None] * perp
    return Z.to(dtype)
