"""filterlib.theory.quadrature: the close-patches constants by quadrature on the circle, against a large Monte Carlo
(within its standard error), against an independent Fourier-series computation for a uniform base angle, against
a convolution-first computation for k = 1, the σ² → 0 limit of L_cross, the reflection symmetry, input checks."""
import math

import numpy as np
import pytest
import torch

from filterlib import distributions, theory

f64 = torch.float64
E1 = torch.tensor([1.0, 0.0], dtype=f64)


def _gauss_legendre(breaks, nodes=24):
    """Composite Gauss–Legendre nodes and weights on the panels between sorted ``breaks`` (numpy)."""
    x, w = np.polynomial.legendre.leggauss(nodes)
    a, b = np.asarray(breaks[:-1]), np.asarray(breaks[1:])
    half = (b - a)[:, None] / 2
    return ((a + b)[:, None] / 2 + half * x).ravel(), (half * w).ravel()


def _base_density(a, sigma):
    """Density of the base angle (½ TN(0, σ²; [−π/2, π/2]) + ½ (π + the same)) at any real a, in numpy."""
    x = (np.asarray(a) + math.pi / 2) % (2 * math.pi) - math.pi / 2                 # in [−π/2, 3π/2)
    x = np.where(x <= math.pi / 2, x, x - math.pi)
    mass = math.erf(math.pi / (2 * sigma * math.sqrt(2)))
    return 0.5 * np.exp(-0.5 * (x / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi) * mass)


def _jitter_density(y, s):
    """Density of TN(0, s²; [−π, π)) at y ∈ [−π, π]."""
    return np.exp(-0.5 * (y / s) ** 2) / (s * math.sqrt(2 * math.pi) * math.erf(math.pi / (s * math.sqrt(2))))


# ---------------------------------------------------------------------------------------------------------------
# Against a large Monte Carlo on distributions.close_patches (both filters at angle φ, p = 2)


@pytest.mark.parametrize("k,sigma2,base_sigma,seed", [(5, 1e-4, 1.0, 1), (2, 0.1, 0.5, 2), (5, 1.0, 1.0, 3),
                                                      (2, 10.0, 0.5, 4), (5, 0.1, 1.0, 5)])
def test_constants_agree_with_monte_carlo(k, sigma2, base_sigma, seed):
    Z = distributions.close_patches(200_000, k, sigma2, base_sigma=base_sigma, seed=seed, dtype=f64)
    phis = [0.02, 0.5, 1.3]
    estimate = theory.constants(Z, E1, phis, which=("gamma", "L", "L_minus", "cross_sum"), return_se=True)
    exact = {"gamma": theory.close_patches_gamma(phis, k, sigma2, base_sigma),
             "L": theory.close_patches_L(phis, k, sigma2, base_sigma),
             "L_minus": theory.close_patches_L_minus(phis, k, sigma2, base_sigma),
             "cross_sum": theory.close_patches_cross_sum(phis, k, sigma2, base_sigma)}
    for name, (value, se) in estimate.items():
        assert exact[name].dtype == f64 and exact[name].shape == (3,)
        z = (value - exact[name]).abs() / (se + 1e-12)
        assert float(z.max()) < 4.5, (name, value, exact[name], se)


def test_L_cross_on_a_grid_agrees_with_monte_carlo_and_the_supremum_is_above():
    """The Monte-Carlo L_cross is the max over default_cross_grid of noisy ratios; the same max of the quadrature
    ratios lies within its error bar, and the quadrature supremum over all φ is at least that max."""
    k, sigma2 = 5, 1.0
    Z = distributions.close_patches(100_000, k, sigma2, seed=7, dtype=f64)
    grid = theory.default_cross_grid(dtype=f64)
    value, se = theory.L_cross(Z, E1, grid, return_se=True)
    on_grid = float((theory.close_patches_cross_sum(grid, k, sigma2) / grid).max())
    assert abs(float(value) - on_grid) < 4 * float(se)
    sup, where = theory.close_patches_L_cross(k, sigma2, return_phi=True)
    assert sup >= on_grid - 1e-15 and 0.0 <= where <= math.pi / 2
    assert theory.close_patches_L_cross(k, sigma2) == sup


def test_supremum_at_an_interior_angle_is_a_local_maximum():
    """At σ² = 10 the supremum of cross_sum(φ)/φ is reached at an interior angle (larger than the φ → 0 limit);
    the ratio there beats its neighbours and the limit."""
    k, sigma2 = 5, 10.0
    sup, where = theory.close_patches_L_cross(k, sigma2, return_phi=True)
    limit = theory.close_patches_small_angle_limits(k, sigma2)["cross_sum"]
    assert 0.1 < where < 1.5 and sup > limit
    near = torch.tensor([where * 0.99, where, where * 1.01], dtype=f64)
    ratios = theory.close_patches_cross_sum(near, k, sigma2) / near
    assert float(ratios[1]) >= float(ratios.max()) - 1e-14
    assert abs(float(ratios[1]) - sup) < 1e-14


# ---------------------------------------------------------------------------------------------------------------
# Independent deterministic computations


def _fourier_uniform_base(phi, k, sigma2, n_terms=400):
    """The moments for a uniform base angle α (rotation-invariant 2-D input), by Fourier series in α:
    g(x) = (1/2π) Σ_n ĝ_n e^{inx}, ĝ_n = E[cos nδ], so for arcs S, S' with I_S(j) = ∫_S e^{ijt} dt and
    A_S(α) = ∫_S e^{it} g(t − α) dt: E_α[A_S conj(A_S')] = (2π)⁻² Σ_n ĝ_n² I_S(1+n) conj(I_S'(1+n)) and
    E_α[A_S A_S'] = (2π)⁻² Σ_n ĝ_n² I_S(1+n) I_S'(1−n); the one-patch term is ∫_S Z Zᵀ dt/(2π)."""
    s = math.sqrt(sigma2)
    y, w = _gauss_legendre(np.unique(np.concatenate([np.linspace(-math.pi, math.pi, 65),
                                                      np.linspace(-12 * s, 12 * s, 97).clip(-math.pi, math.pi)])))
    n = np.arange(-n_terms, n_terms + 1)
    g_hat = (np.cos(np.outer(n, y)) * (w * _jitter_density(y, s))).sum(1)
    h = math.pi / 2
    arcs = {"P": (phi - h, h), "N": (h, h + phi), "M": (-h, phi - h)}

    def I(name, j):
        a, b = arcs[name]
        j = np.asarray(j, dtype=complex)
        out = np.where(j == 0, b - a, 0).astype(complex)
        nz = j != 0
        out[nz] = (np.exp(1j * j[nz] * b) - np.exp(1j * j[nz] * a)) / (1j * j[nz])
        return out

    def off(a, b):                                  # E_α[m_a m_bᵀ] from E[A conj(B)] and E[A B]
        c = (g_hat ** 2 * I(a, 1 + n) * np.conj(I(b, 1 + n))).sum() / (2 * math.pi) ** 2
        d = (g_hat ** 2 * I(a, 1 + n) * I(b, 1 - n)).sum() / (2 * math.pi) ** 2
        return 0.5 * np.array([[c.real + d.real, d.imag - c.imag], [c.imag + d.imag, c.real - d.real]])

    def own(a):
        i0, i2 = I(a, [0])[0].real, I(a, [2])[0]
        return 0.5 * np.array([[i0 + i2.real, i2.imag], [i2.imag, i0 - i2.real]]) / (2 * math.pi)

    c = (k - 1) / k
    return {"pos": own("P") / k + c * off("P", "P"), "neg": own("N") / k + c * off("N", "N"),
            "T1": c * off("P", "N"), "T2": c * off("P", "M"), "T4": c * off("N", "M")}


@pytest.mark.parametrize("sigma2", [0.1, 1.0, 10.0])
@pytest.mark.parametrize("phi", [0.01, 0.7, 2.5])
def test_uniform_base_angle_matches_fourier_series(sigma2, phi):
    """base_sigma = 10⁵: the base angle is uniform on the circle to ≈ 10⁻¹⁰, so the input is rotation invariant and
    the moments have the Fourier-series forms of :func:`_fourier_uniform_base`."""
    k = 3
    plus, minus = theory.close_patches_moments(phi, k, sigma2, base_sigma=1e5)
    ref = _fourier_uniform_base(phi, k, sigma2)
    for key, M in ref.items():
        np.testing.assert_allclose(plus[key].numpy(), M, rtol=0, atol=1e-8 * max(1.0, np.abs(M).max()))


def test_reflection_symmetry_of_the_two_filters():
    D = torch.diag(torch.tensor([1.0, -1.0], dtype=f64))
    for sigma2, base_sigma in [(1e-4, 1.0), (2.0, 0.5)]:
        plus, minus = theory.close_patches_moments(0.4, 4, sigma2, base_sigma)
        for key in plus:
            torch.testing.assert_close(minus[key], D @ plus[key] @ D, rtol=1e-11, atol=1e-15)


@pytest.mark.parametrize("sigma2,base_sigma", [(1e-4, 1.0), (1.0, 0.5), (10.0, 1.0)])
def test_one_patch_is_the_one_neuron_moment_of_the_patch_angle_law(sigma2, base_sigma):
    """k = 1: no cross moments, L_cross = 0, and "pos" is Part I's A_{w,w*} = ∫_{S(w,w*)} Z Zᵀ ρ(t) dt for the
    density ρ = (base density) ⊛ g of the patch's angle, computed here convolution first (ρ(t) by quadrature over
    δ, then over t)."""
    s = math.sqrt(sigma2)
    phi = 0.6
    plus, _ = theory.close_patches_moments(phi, 1, sigma2, base_sigma)
    for key in ("T1", "T2", "T4"):
        assert float(plus[key].abs().max()) == 0.0

    def rho(t):                                      # ∫ f(t − δ) g(δ) dδ, panels cut at f's kinks t − δ = ±π/2
        cuts = [-math.pi, math.pi] + [(t - c + math.pi) % (2 * math.pi) - math.pi for c in (math.pi / 2, -math.pi / 2)]
        fine = np.linspace(-14 * s, 14 * s, 113).clip(-math.pi, math.pi)
        d, w = _gauss_legendre(np.unique(np.concatenate([cuts, fine, np.linspace(-math.pi, math.pi, 33)])))
        return float((w * _base_density(t - d, base_sigma) * _jitter_density(d, s)).sum())

    lo, hi = phi - math.pi / 2, math.pi / 2
    t, w = _gauss_legendre(np.unique(np.concatenate([np.linspace(lo, hi, 41), lo + np.arange(0, 14, 0.5) * s,
                                                     hi - np.arange(0, 14, 0.5) * s]).clip(lo, hi)), nodes=12)
    r = np.array([rho(x) for x in t])
    Zt = np.stack([np.cos(t), np.sin(t)], 1)
    A = np.einsum("n,ni,nj->ij", w * r, Zt, Zt)
    np.testing.assert_allclose(plus["pos"].numpy(), A, rtol=0, atol=1e-10)
    assert abs(theory.close_patches_gamma(phi, 1, sigma2, base_sigma) - np.linalg.eigvalsh(A)[0]) < 1e-10


def test_one_patch_has_no_cross_terms():
    assert float(theory.close_patches_cross_sum([1e-3, 0.5, 3.0], 1, 0.1).abs().max()) == 0.0
    assert theory.close_patches_L_cross(1, 1.0) == 0.0
    assert theory.close_patches_small_angle_limits(1, 1.0)["cross_sum"] == 0.0


def test_L_cross_tends_to_the_derived_limit_as_sigma2_vanishes():
    """L_cross(σ²) → close_patches_cross_limit(k, base_sigma) as σ² → 0, the gap shrinking like σ."""
    for k, base_sigma in [(5, 1.0), (2, 0.5)]:
        limit = theory.close_patches_cross_limit(k, base_sigma)
        gaps = [abs(theory.close_patches_small_angle_limits(k, s2, base_sigma)["cross_sum"] / limit - 1)
                for s2 in (1e-4, 1e-6, 1e-8)]
        assert gaps[2] < 1e-3 and gaps[1] < gaps[0] / 5 and gaps[2] < gaps[1] / 5
    assert abs(theory.close_patches_L_cross(5, 1e-4) - theory.close_patches_cross_limit(5)) < 0.03 * 0.0526


def test_small_angle_limits_match_small_angles():
    """The φ → 0 limits computed directly agree with cross_sum(φ)/φ and L_minus(φ)/φ at φ = 10⁻⁹."""
    for sigma2 in (1e-4, 1.0):
        lim = theory.close_patches_small_angle_limits(5, sigma2)
        phi = 1e-9
        assert abs(theory.close_patches_cross_sum(phi, 5, sigma2) / phi / lim["cross_sum"] - 1) < 1e-6
        assert abs(theory.close_patches_L_minus(phi, 5, sigma2) / phi / lim["L_minus"] - 1) < 1e-6


def test_band_mass_agrees_with_monte_carlo_and_its_limit():
    """Theorem 4.3's band mass: the fraction of patches with signed angle within φ of ±π/2 (both bands, by the
    law's symmetry, the same mass), within 4 binomial standard errors; band(φ)/φ tends to its φ → 0 limit 2ρ(π/2)
    and equals 1/π at φ = π/2 (the band is a half circle)."""
    for sigma2, base_sigma in [(1e-4, 1.0), (1.0, 0.5)]:
        Z = distributions.close_patches(100_000, 3, sigma2, base_sigma=base_sigma, seed=9, dtype=f64)
        signed = torch.atan2(Z[..., 1], Z[..., 0]).reshape(-1)
        phis = [0.01, 0.3, 1.0]
        exact = theory.close_patches_band_mass(phis, sigma2, base_sigma)
        for q, phi in enumerate(phis):
            for c in (math.pi / 2, -math.pi / 2):
                frac = float(((signed - c).abs() <= phi).to(f64).mean())
                se = math.sqrt(float(exact[q]) * (1 - float(exact[q])) / signed.numel())
                assert abs(frac - float(exact[q])) < 4 * se + 1e-12
        limit = theory.close_patches_small_angle_limits(3, sigma2, base_sigma)["mu"]
        assert abs(theory.close_patches_band_mass(1e-8, sigma2, base_sigma) / 1e-8 / limit - 1) < 1e-6
        assert abs(theory.close_patches_band_mass(math.pi / 2, sigma2, base_sigma) - 0.5) < 1e-12


def test_beta_is_the_supremum_of_the_ratio():
    beta, where = theory.close_patches_beta(5, 0.1, return_phi=True)
    phis = torch.linspace(0.01, math.pi / 2, 50, dtype=f64)
    ratios = theory.close_patches_L_minus(phis, 5, 0.1) / phis
    assert beta >= float(ratios.max()) - 1e-15 and 0.0 <= where <= math.pi / 2


# ---------------------------------------------------------------------------------------------------------------
# Input checks and return types


def test_return_types():
    assert isinstance(theory.close_patches_gamma(0.3, 5, 0.1), float)
    out = theory.close_patches_gamma(np.array([0.3, 0.4]), 5, 0.1)
    assert isinstance(out, torch.Tensor) and out.dtype == f64 and out.shape == (2,)
    assert isinstance(theory.close_patches_L_cross(3, 0.1), float)
    assert theory.close_patches_gamma.__module__ == "filterlib.theory"


@pytest.mark.parametrize("call,match", [
    (lambda: theory.close_patches_gamma(0.3, 0, 0.1), "k must be a positive integer"),
    (lambda: theory.close_patches_gamma(0.3, 2, 0.0), "sigma2 must be a positive finite number"),
    (lambda: theory.close_patches_gamma(0.3, 2, 0.1, base_sigma=float("nan")), "base_sigma"),
    (lambda: theory.close_patches_gamma(-0.1, 2, 0.1), "phi must lie in"),
    (lambda: theory.close_patches_cross_sum(4.0, 2, 0.1), "phi must lie in"),
    (lambda: theory.close_patches_moments([0.1, 0.2], 2, 0.1), "phi must be a single angle"),
    (lambda: theory.close_patches_L_cross(2.5, 0.1), "k must be a positive integer"),
    (lambda: theory.close_patches_beta(2, 0.1, return_phi=1), "return_phi must be True or False"),
])
def test_bad_input(call, match):
    with pytest.raises((TypeError, ValueError), match=match):
        call()
