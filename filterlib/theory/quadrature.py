"""The constants of Assumptions 4.1–4.2 for the close-patches law, computed deterministically by quadrature on the
circle (no sampling, no error bar). Defined in chapters/conv_model.md, used in chapters/closeness.md,
chapters/sgd.md and chapters/init.md.

The law (:func:`filterlib.distributions.close_patches`): k unit patches in the plane at signed angles α + δ_i to
w*, with α drawn from :func:`filterlib.distributions.angular_mixture` (σ = ``base_sigma``, density
:func:`filterlib.distributions.angular_mixture_density`) and δ_i i.i.d. TN(0, σ²; [−π, π)), σ² = ``sigma2``.
Given α the patches are independent, so for two regions S, S' of one patch (the wedges S(w, w*), S(w, −w*),
S(−w, w*) of Section 4) the moment of Z_S = (1/k) Σ_i Z_i 1{Z_i ∈ S} splits into

    E[Z_S Z_S'ᵀ] = (1/k) E_α[∫_{S∩S'} Z(t) Z(t)ᵀ g(t − α) dt] + ((k − 1)/k) E_α[m_S(α) m_S'(α)ᵀ],
    m_S(α) = ∫_S Z(t) g(t − α) dt,

with Z(t) = (cos t, sin t) in the basis (ŵ*, ŵ*⊥) and g the density of δ on the circle. The wedges are arcs, so
the inner integrals are differences of antiderivatives of e^{imy} g(y) (m = 0, 1, 2), tabulated once per σ² by
composite Gauss–Legendre quadrature on panels of width ≤ σ/2 (arcs narrower than that, the wedges of width φ as
φ → 0, are integrated directly, without cancellation); the outer integral over α is composite Gauss–Legendre
(12 nodes a panel) with panel breaks at every kink (α = ±π/2 of the base density, α = arc end ± π where the
truncated kernel jumps), panels of width 2σ within 10σ of every arc end and no panel wider than
min(π/16, base_sigma/2). Everything is float64. Halving every panel and raising the node counts changes no
constant by more than 1e-13 (relative) for σ² from 1e-4 to 10; tests/test_theory_quadrature.py checks the
moments against an independent Fourier-series computation (uniform base angle) and a convolution-first one
(k = 1) to 1e-8 or better, and against a large Monte Carlo within its standard error.

Public functions (φ in radians; a number gives a float, a 1-D array a float64 tensor):

* :func:`close_patches_moments`: the matrices "pos", "neg", "T1", "T2", "T4" of
  :func:`filterlib.theory.conv_moments` for each of the two filters at angle φ in the plane (w = R(±φ)ŵ*).
* :func:`close_patches_gamma`, :func:`close_patches_L`, :func:`close_patches_L_minus`,
  :func:`close_patches_cross_sum`: γ(φ), L(φ) (Assumption 4.1), the left side of the β condition and of
  Assumption 4.2, each the min or max over the two filters (the law is symmetric under the reflection across w*,
  so the two filters give the same values).

For the paper's law (k = 5, base σ = 1; chapters/conv_model.md) the supremum of cross_sum(φ)/φ is its φ → 0 limit
for σ² ≤ 1, but is reached at an interior angle for σ² = 2 (φ ≈ 0.50) and σ² = 10 (φ ≈ 0.67), about 4% and 8.5%
above the limit; β is reached at φ = π/2 for these five σ².
* :func:`close_patches_band_mass`: the mass of Theorem 4.3's band around w*'s decision boundary (μ).
* :func:`close_patches_L_cross` and :func:`close_patches_beta`: the suprema over φ ∈ (0, π/2] of
  cross_sum(φ)/φ and L_minus(φ)/φ, including their φ → 0 limits (computed directly, see
  :func:`close_patches_small_angle_limits`), by a grid of 60 angles refined around its best angle; with
  ``return_phi=True`` also the angle where the supremum is reached (0.0 when it is the φ → 0 limit).
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch

from .. import _validate as v
from ..distributions import angular_mixture_density

_F64, _C128 = torch.float64, torch.complex128
_OUTER, _INNER = 12, 8                                       # Gauss–Legendre nodes per panel (α; one kernel panel)
_GL = {n: tuple(torch.as_tensor(a, dtype=_F64) for a in np.polynomial.legendre.leggauss(n)) for n in (_OUTER, _INNER)}
_HARMONICS = (0, 1, 2)                                       # ∫ e^{imy} g(y) dy for m = 0, 1, 2
_COARSE = math.pi / 16                                       # widest panel anywhere
_NEAR = 10                                                   # fine α panels within _NEAR·σ of every arc end
_FINE = 2.0                                                  # their width, in units of σ
_CHUNK = 1 << 17                                             # α nodes per vectorised pass


def _gl(lo: torch.Tensor, hi: torch.Tensor, fn, nodes: int | None = None, trailing: int = 0) -> torch.Tensor:
    """Gauss–Legendre ∫_lo^hi fn on each interval [lo, hi] (elementwise; fn maps y (…, nodes) to (…, nodes) plus
    ``trailing`` extra axes)."""
    x, w = _GL[nodes or _INNER]
    half = (hi - lo) / 2
    y = ((lo + hi) / 2)[..., None] + half[..., None] * x
    w = w.reshape(w.shape + (1,) * trailing)
    return (fn(y) * w).sum(-1 - trailing) * half.reshape(half.shape + (1,) * trailing)


class _Kernel:
    """The jitter δ ~ TN(0, s²; [−π, π)) on the circle: its density g and H(x) = ∫_0^x e^{imy} g(y) dy for
    m = 0, 1, 2 (the last axis) and x ∈ [−π, π], tabulated at panel breaks (width ≤ min(s/2, π/16) up to 40s,
    ≤ π/16 beyond) and completed by one 8-node panel of width ≤ s/2 at the evaluation point."""

    def __init__(self, sigma2: float):
        self.s = math.sqrt(sigma2)
        self.mass = math.erf(math.pi / (self.s * math.sqrt(2)))            # P(|N(0, s²)| ≤ π)
        self.width = min(self.s / 2, _COARSE)
        fine_end = min(math.pi, 40 * self.s)
        breaks = [torch.linspace(0, fine_end, math.ceil(fine_end / self.width) + 1, dtype=_F64)]
        if fine_end < math.pi:
            breaks.append(torch.linspace(fine_end, math.pi, math.ceil((math.pi - fine_end) / _COARSE) + 1,
                                         dtype=_F64)[1:])
        self.breaks = torch.cat(breaks)
        pieces = _gl(self.breaks[:-1], self.breaks[1:], self.waves, _OUTER, trailing=1)
        self.cum = torch.cat([torch.zeros(1, 3, dtype=_C128), torch.cumsum(pieces, 0)])
        self.full = 2 * self.cum[-1].real.to(_C128)                        # H(π) − H(−π) = E[e^{imδ}]

    def g(self, y: torch.Tensor) -> torch.Tensor:
        """Density of δ at y ∈ [−π, π]."""
        return torch.exp(-0.5 * (y / self.s) ** 2) / (self.s * math.sqrt(2 * math.pi) * self.mass)

    def waves(self, y: torch.Tensor) -> torch.Tensor:
        """e^{imy} g(y) for m = 0, 1, 2 on a new last axis."""
        gy = self.g(y).to(_C128)
        e1 = torch.polar(torch.ones_like(y), y)
        return torch.stack([gy, gy * e1, gy * e1 * e1], -1)

    def H(self, x: torch.Tensor) -> torch.Tensor:
        """H(x) for x ∈ [−π, π] (any shape; m on a new last axis): the table plus one panel, and
        H(−x) = −conj(H(x)) (g is even)."""
        a = x.abs().clamp(max=math.pi)
        j = (torch.searchsorted(self.breaks, a, right=True) - 1).clamp(0, self.breaks.shape[0] - 2)
        out = self.cum[j] + _gl(self.breaks[j], a, self.waves, trailing=1)
        return torch.where((x < 0)[..., None], -out.conj(), out)


@functools.lru_cache(maxsize=32)
def _kernel(sigma2: float) -> _Kernel:
    return _Kernel(sigma2)


def _wrap(x: torch.Tensor) -> torch.Tensor:
    """x on the circle, in [−π, π)."""
    return torch.remainder(x + math.pi, 2 * math.pi) - math.pi


def _alpha_nodes(ends, base_sigma: float, s: float):
    """Gauss–Legendre nodes and weights (times the base density) over one period of α, [−π/2, 3π/2), with panel
    breaks at the base density's kinks (±π/2), at every arc end and arc end ± π (the kernel's truncation), every 2s
    within 10s of an arc end (ends closer than s to one another share one lattice), and panels no wider than
    min(π/16, base_sigma/2)."""
    lo, hi = -math.pi / 2, 3 * math.pi / 2
    pts = [lo, math.pi / 2, hi]
    fine = torch.arange(-math.ceil(_NEAR / _FINE), math.ceil(_NEAR / _FINE) + 1, dtype=_F64) * (_FINE * s)
    centred = []                                          # ends that got a fine lattice
    for e in sorted(ends):
        pts += [e, e + math.pi, e - math.pi]
        if s < _COARSE and not any(abs(e - c) < _FINE * s / 2 for c in centred):
            pts += (e + fine).tolist()                    # an end close to a centred one shares its lattice
            centred.append(e)
    wrapped = torch.remainder(torch.tensor(pts, dtype=_F64) - lo, 2 * math.pi) + lo
    b = torch.unique(torch.cat([wrapped, torch.tensor([lo, hi], dtype=_F64)]))
    widest = min(_COARSE, base_sigma / 2)
    parts = [torch.linspace(a, c, math.ceil((c - a) / widest) + 1, dtype=_F64)
             for a, c in zip(b[:-1].tolist(), b[1:].tolist()) if c - a > 1e-15]
    left = torch.cat([p[:-1] for p in parts])
    right = torch.cat([p[1:] for p in parts])
    x, w = _GL[_OUTER]
    half = ((right - left) / 2)[:, None]
    alpha = (((left + right) / 2)[:, None] + half * x).reshape(-1)
    weight = (half * w).reshape(-1) * angular_mixture_density(alpha, base_sigma)
    return alpha, weight


def _arcs(psi: float) -> dict:
    """The arcs (start, length) of S(w, w*) "P", S(w, −w*) "N", S(−w, w*) "M" for the filter w = R(ψ)ŵ* at signed
    angle ψ ∈ [−π, π], φ = |ψ|: for ψ ≥ 0 the patch angle t is in P iff t ∈ [φ − π/2, π/2], in N iff
    t ∈ [π/2, π/2 + φ], in M iff t ∈ [−π/2, φ − π/2]; for ψ < 0 the mirror images."""
    h, phi = math.pi / 2, abs(psi)
    if psi >= 0:
        return {"P": (phi - h, math.pi - phi), "N": (h, phi), "M": (-h, phi)}
    return {"P": (-h, math.pi - phi), "N": (-h - phi, phi), "M": (h - phi, phi)}


def _vec(c: torch.Tensor) -> torch.Tensor:
    """Complex numbers x + iy as 2-vectors (…, 2)."""
    return torch.stack([c.real, c.imag], dim=-1)


def _second(c0: torch.Tensor, c2: torch.Tensor) -> torch.Tensor:
    """∫ Z Zᵀ from ∫ 1 (c0) and ∫ e^{2it} (c2): ½[[c0 + Re c2, Im c2], [Im c2, c0 − Re c2]] (…, 2, 2)."""
    a, re, im = c0.real, c2.real, c2.imag
    return 0.5 * torch.stack([torch.stack([a + re, im], -1), torch.stack([im, a - re], -1)], -2)


def _arc_integrals(ker: _Kernel, names, alpha: torch.Tensor, start: torch.Tensor, length: torch.Tensor) -> dict:
    """{(name, m): ∫_arc e^{imt} g(t − α) dt} (complex, one per α node) for m = 0, 1, 2 and the arcs ``names``,
    whose starts and lengths per node are the columns of ``start`` and ``length`` (nodes, len(names)). An arc
    [a, a + L] in t is [u, u + L] in t − α, u = wrap(a − α); the integral is H(wrap(a + L − α)) − H(u), plus
    H(π) − H(−π) when the arc crosses the kernel's truncation at ±π; arcs no wider than a kernel panel that do
    not cross it are integrated directly (no cancellation as φ → 0)."""
    u = _wrap(start - alpha[:, None])
    w = _wrap(start + length - alpha[:, None])
    crosses = w < u
    inner = ker.H(w) - ker.H(u) + crosses[..., None] * ker.full
    short = (length <= ker.width) & ~crosses
    if bool(short.any()):
        direct = _gl(u, torch.where(short, u + length, u), ker.waves, trailing=1)
        inner = torch.where(short[..., None], direct, inner)
    e1 = torch.polar(torch.ones_like(alpha), alpha)[:, None]
    phase = torch.stack([torch.ones_like(e1), e1, e1 * e1], -1)              # e^{imα}
    inner = inner * phase
    return {(name, m): inner[:, j, m] for j, name in enumerate(names) for m in _HARMONICS}


def _moments_many(psis, k: int, sigma2: float, base_sigma: float) -> list:
    """The moments "pos", "neg", "T1", "T2", "T4" (2 × 2, float64) for the filters w = R(ψ)ŵ* at each signed angle
    ψ of ``psis``, in vectorised passes of at most about ``_CHUNK`` α nodes."""
    ker = _kernel(sigma2)
    nodes = []
    for psi in psis:
        ends = sorted({e for a, length in _arcs(psi).values() for e in (a, a + length)})
        nodes.append(_alpha_nodes(ends, base_sigma, ker.s))
    results, i = [], 0
    while i < len(psis):
        j, size = i, 0
        while j < len(psis) and (j == i or size + nodes[j][0].shape[0] <= _CHUNK):
            size += nodes[j][0].shape[0]
            j += 1
        results += _moments_pass(psis[i:j], nodes[i:j], ker, k)
        i = j
    return results


def _moments_pass(psis, nodes, ker: _Kernel, k: int) -> list:
    alpha = torch.cat([a for a, _ in nodes])
    weight = torch.cat([w for _, w in nodes])
    which = torch.cat([torch.full((a.shape[0],), q, dtype=torch.long) for q, (a, _) in enumerate(nodes)])
    table = torch.tensor([list(_arcs(psi).values()) for psi in psis], dtype=_F64)          # (Q, 3, 2)
    I = _arc_integrals(ker, list(_arcs(0.0)), alpha, table[which, :, 0], table[which, :, 1])
    m = {name: _vec(I[name, 1]) for name in ("P", "N", "M")}
    own = {name: _second(I[name, 0], I[name, 2]) for name in ("P", "N")}
    Q = len(psis)

    def total(per_node):                                                    # Σ over each angle's nodes
        return torch.zeros(Q, 2, 2, dtype=_F64).index_add_(0, which, weight[:, None, None] * per_node)

    off = lambda a, b: total(m[a][:, :, None] * m[b][:, None, :])
    c = (k - 1) / k
    moments = {"pos": total(own["P"]) / k + c * off("P", "P"), "neg": total(own["N"]) / k + c * off("N", "N"),
               "T1": c * off("P", "N"), "T2": c * off("P", "M"), "T4": c * off("N", "M")}
    return [{key: M[q] for key, M in moments.items()} for q in range(Q)]


def _check(k, sigma2, base_sigma):
    return (v.positive_int(k, "k"), v.positive_float(sigma2, "sigma2"), v.positive_float(base_sigma, "base_sigma"))


def close_patches_moments(phi: float, k: int, sigma2: float, base_sigma: float = 1.0) -> tuple[dict, dict]:
    """The population moments of :func:`filterlib.theory.conv_moments` ("pos", "neg", "T1", "T2", "T4", 2 × 2
    float64 tensors in the basis (ŵ*, ŵ*⊥)) of the close-patches law, by quadrature, for the two filters at angle
    ``phi`` ∈ [0, π] to w*: w = R(+φ)ŵ* and w = R(−φ)ŵ* (returned in that order). Defined in
    chapters/conv_model.md.

    The law is symmetric under the reflection D = diag(1, −1) across w*, so the second equals D M D for the
    first M (both are computed).
    """
    k, sigma2, base_sigma = _check(k, sigma2, base_sigma)
    t, scalar = v.angles(phi, "phi", dtype=_F64)
    if not scalar:
        raise ValueError(f"phi must be a single angle, got shape {tuple(t.shape)}")
    phi = float(t[0])
    return tuple(_moments_many((phi, -phi), k, sigma2, base_sigma))


_RECIPES = {"gamma": (("pos",), "min"), "L": (("pos",), "max"), "L_minus": (("neg",), "max"),
             "cross_sum": (("T1", "T2", "T4"), "singular")}


def _values(name: str, phis, k: int, sigma2: float, base_sigma: float) -> list:
    """γ, L, L_minus or the cross sum at each angle of ``phis``. The law is symmetric under the reflection
    D = diag(1, −1) across w*, which maps the filter R(φ)ŵ* to R(−φ)ŵ* and each of its moments M to D M D (same
    eigenvalues and singular values; :func:`close_patches_moments` computes both), so the min/max over the two
    filters is the value of the first."""
    keys, kind = _RECIPES[name]
    moments = _moments_many([float(x) for x in phis], k, sigma2, base_sigma)
    out = []
    for M in moments:
        if kind == "singular":
            out.append(sum(float(torch.linalg.matrix_norm(M[key], ord=2)) for key in keys))
        else:
            out.append(float(torch.linalg.eigvalsh(M[keys[0]])[0 if kind == "min" else -1]))
    return out


def _per_angle(name: str, phi, k, sigma2, base_sigma):
    k, sigma2, base_sigma = _check(k, sigma2, base_sigma)
    t, scalar = v.angles(phi, "phi", dtype=_F64)
    out = _values(name, t.tolist(), k, sigma2, base_sigma)
    return out[0] if scalar else torch.tensor(out, dtype=_F64)


def close_patches_gamma(phi, k: int, sigma2: float, base_sigma: float = 1.0):
    """γ(φ) of Assumption 4.1 for the close-patches law, by quadrature: min over the two filters at angle φ in the
    plane of λ_min(E[Z_S(w,w*) Z_S(w,w*)ᵀ]). ``phi`` ∈ [0, π]: a number gives a float, a 1-D array a float64
    tensor. Defined in chapters/conv_model.md, used in chapters/closeness.md, chapters/sgd.md and
    chapters/init.md (the deterministic counterpart of :func:`filterlib.theory.conv_gamma`)."""
    return _per_angle("gamma", phi, k, sigma2, base_sigma)


def close_patches_L(phi, k: int, sigma2: float, base_sigma: float = 1.0):
    """L(φ) of Assumption 4.1 for the close-patches law, by quadrature: max over the two filters of
    λ_max(E[Z_S(w,w*) Z_S(w,w*)ᵀ]). As :func:`close_patches_gamma` (counterpart of
    :func:`filterlib.theory.conv_L`). Defined in chapters/conv_model.md."""
    return _per_angle("L", phi, k, sigma2, base_sigma)


def close_patches_L_minus(phi, k: int, sigma2: float, base_sigma: float = 1.0):
    """max over the two filters at angle φ of λ_max(E[Z_S(w,−w*) Z_S(w,−w*)ᵀ]), the left side of Assumption 4.1's
    β condition, by quadrature. As :func:`close_patches_gamma` (counterpart of
    :func:`filterlib.theory.conv_L_minus`). Defined in chapters/conv_model.md."""
    return _per_angle("L_minus", phi, k, sigma2, base_sigma)


def close_patches_cross_sum(phi, k: int, sigma2: float, base_sigma: float = 1.0):
    """The left side of Assumption 4.2 for the close-patches law, by quadrature: max_w σ_max(T1) + max_w σ_max(T2)
    + max_w σ_max(T4), each maximum over the two filters at angle φ (T1 = E[Z_S(w,w*) Z_S(w,−w*)ᵀ],
    T2 = E[Z_S(w,w*) Z_S(−w,w*)ᵀ], T4 = E[Z_S(w,−w*) Z_S(−w,w*)ᵀ]). As :func:`close_patches_gamma` (counterpart of
    :func:`filterlib.theory.cross_sum`); exactly 0 for k = 1. Defined in chapters/conv_model.md, used in
    chapters/closeness.md."""
    return _per_angle("cross_sum", phi, k, sigma2, base_sigma)


def close_patches_small_angle_limits(k: int, sigma2: float, base_sigma: float = 1.0) -> dict:
    """The φ → 0 limits of cross_sum(φ)/φ and L_minus(φ)/φ for the close-patches law, computed directly. Defined
    in chapters/conv_model.md.

    As φ → 0 the wedge S(w, −w*) shrinks to the boundary direction e = ŵ*⊥ (for w = R(+φ)ŵ*):
    m_{S(w,−w*)}(α) = φ g(π/2 − α) e + O(φ²), S(w, w*) tends to the half-plane H = {w*ᵀZ ≥ 0} and T4 = O(φ²), so

    * cross_sum(φ)/φ → ((k − 1)/k)(‖E_α[g(π/2 − α) m_H(α)]‖ + ‖E_α[g(−π/2 − α) m_H(α)]‖) (T1 and T2; equal
      by symmetry), with m_H(α) = ∫_H Z(t) g(t − α) dt;
    * L_minus(φ)/φ → ρ(π/2)/k, with ρ = the density of a patch's angle, E_α[g(π/2 − α)] (the diagonal term;
      the off-diagonal one is O(φ²));
    * the band ratio of Theorem 4.3, :func:`close_patches_band_mass`(φ)/φ → 2ρ(π/2) ("mu").

    As σ² → 0 the first tends to :func:`filterlib.theory.close_patches_cross_limit`. Returns {"cross_sum":
    float, "L_minus": float, "mu": float}.
    """
    k, sigma2, base_sigma = _check(k, sigma2, base_sigma)
    ker = _kernel(sigma2)
    h = math.pi / 2
    alpha, weight = _alpha_nodes([-h, h], base_sigma, ker.s)
    half_plane = torch.tensor([[-h]], dtype=_F64).expand(alpha.shape[0], 1)
    m_half = _vec(_arc_integrals(ker, ["H"], alpha, half_plane, torch.full_like(half_plane, math.pi))["H", 1])
    at = lambda t: ker.g(_wrap(t - alpha))
    v1 = (weight * at(h)) @ m_half
    v2 = (weight * at(-h)) @ m_half
    density = float((weight * at(h)).sum())
    return {"cross_sum": (k - 1) / k * float(v1.norm() + v2.norm()), "L_minus": density / k, "mu": 2 * density}


def close_patches_band_mass(phi, sigma2: float, base_sigma: float = 1.0):
    """P(θ(Z_i, w*) ∈ [π/2 − φ, π/2 + φ]) for a patch of the close-patches law (signed angle; the band around
    −π/2 has the same mass by symmetry), by quadrature: Theorem 4.3's μ is the supremum of this over φ. The same
    for every patch i and every k. ``phi`` ∈ [0, π/2]: a number gives a float, a 1-D array a float64 tensor.
    Defined in chapters/closeness.md."""
    _, sigma2, base_sigma = _check(1, sigma2, base_sigma)
    t, scalar = v.angles(phi, "phi", dtype=_F64, high=math.pi / 2)
    ker = _kernel(sigma2)
    h = math.pi / 2
    nodes = [_alpha_nodes([h - x, h + x], base_sigma, ker.s) for x in t.tolist()]
    alpha, weight = torch.cat([a for a, _ in nodes]), torch.cat([w for _, w in nodes])
    which = torch.cat([torch.full((a.shape[0],), q, dtype=torch.long) for q, (a, _) in enumerate(nodes)])
    start, width = (h - t)[which][:, None], 2 * t[which][:, None]
    inside = _arc_integrals(ker, ["B"], alpha, start, width)["B", 0].real
    out = torch.zeros(t.shape[0], dtype=_F64).index_add_(0, which, weight * inside)
    return float(out[0]) if scalar else out


def _supremum(name: str, limit_key: str, k, sigma2, base_sigma, return_phi):
    """sup over φ ∈ (0, π/2] of value(φ)/φ: the larger of the φ → 0 limit and the best angle of a grid of 60
    (24 geometric from 1e-6 to 0.05, 36 equally spaced up to π/2), refined by zooming (7 angles inside the two grid
    intervals around the best, 8 times, each shrinking the bracket fourfold)."""
    k, sigma2, base_sigma = _check(k, sigma2, base_sigma)
    return_phi = v.flag(return_phi, "return_phi")
    limit = close_patches_small_angle_limits(k, sigma2, base_sigma)[limit_key]
    grid = torch.cat([torch.logspace(-6, math.log10(0.05), 25, dtype=_F64)[:-1],
                      torch.linspace(0.05, math.pi / 2, 36, dtype=_F64)]).tolist()
    ratios = lambda xs: [value / x for value, x in zip(_values(name, xs, k, sigma2, base_sigma), xs)]
    vals = ratios(grid)
    j = max(range(len(grid)), key=vals.__getitem__)
    best, where = vals[j], grid[j]
    if 0 < j < len(grid) - 1:                                # an interior maximum: zoom in on it
        a, b = grid[j - 1], grid[j + 1]
        for _ in range(8):
            xs = torch.linspace(a, b, 9, dtype=_F64).tolist()[1:-1]
            vs = ratios(xs)
            i = max(range(len(xs)), key=vs.__getitem__)
            if vs[i] > best:
                best, where = vs[i], xs[i]
            step = (b - a) / 8
            a, b = max(a, where - step), min(b, where + step)
    if limit >= best:
        best, where = limit, 0.0
    return (best, where) if return_phi else best


def close_patches_L_cross(k: int, sigma2: float, base_sigma: float = 1.0, *, return_phi: bool = False):
    """L_cross of Assumption 4.2 for the close-patches law, by quadrature: sup over φ ∈ (0, π/2] of
    :func:`close_patches_cross_sum`(φ)/φ, a float. Defined in chapters/conv_model.md, used in
    chapters/closeness.md, chapters/sgd.md and chapters/init.md (the deterministic counterpart of the Monte-Carlo
    :func:`filterlib.theory.L_cross`, which is a maximum of noisy ratios and biased high).

    The supremum is the larger of the φ → 0 limit (:func:`close_patches_small_angle_limits`) and the best of a
    60-angle grid (24 geometric from 1e-6 to 0.05, 36 equally spaced to π/2) refined by zooming in around the
    best grid angle. With ``return_phi=True`` returns
    (L_cross, φ where it is reached), φ = 0.0 meaning the φ → 0 limit. 0.0 for k = 1.
    """
    return _supremum("cross_sum", "cross_sum", k, sigma2, base_sigma, return_phi)


def close_patches_beta(k: int, sigma2: float, base_sigma: float = 1.0, *, return_phi: bool = False):
    """β of Assumption 4.1 for the close-patches law, by quadrature: sup over φ ∈ (0, π/2] of
    :func:`close_patches_L_minus`(φ)/φ, computed as :func:`close_patches_L_cross` (counterpart of the Monte-Carlo
    :func:`filterlib.theory.conv_beta`). Defined in chapters/conv_model.md."""
    return _supremum("L_minus", "L_minus", k, sigma2, base_sigma, return_phi)
