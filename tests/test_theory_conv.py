"""filterlib.theory, Part II (convolutional filter, k patches): the moments and the four-region gradient, the reduction
to Part I for k = 1 and for identical patches, Monte-Carlo γ/L/β/L_cross against closed forms for non-overlapping
Gaussian patches, Theorem 4.1 quantities and its contraction along gradient descent, Theorem 4.3 on close patches,
input checks."""
import math

import pytest
import torch

import filterlib as fl
from filterlib import distributions, theory

f64 = torch.float64
E1 = torch.tensor([1.0, 0.0], dtype=f64)
PHI0 = math.asin(0.94)                           # the start w0 = (0.5, 0.8) of Figure 3: ‖w0 − w*‖ = 0.94‖w*‖


# ---------------------------------------------------------------------------------------------------------------
# Moments and the gradient (Section 4 of the paper, Theorem 4.1's proof)


def _direct_moments(w, w_star, Z):
    """The moments of conv_moments by a Python loop over inputs and patches (the library is vectorised)."""
    n, k, p = Z.shape
    out = {key: torch.zeros(p, p, dtype=f64) for key in theory.CONV_MOMENT_KEYS}
    for z in Z:
        P, N, M, W, S = (torch.zeros(p, dtype=f64) for _ in range(5))
        for zi in z:
            a, b = float(w @ zi) >= 0, float(w_star @ zi) >= 0
            P += zi * (a and b) / k
            N += zi * (a and not b) / k
            M += zi * ((not a) and b) / k
            W += zi * a / k
            S += zi * b / k
        for key, (x, y) in {"pos": (P, P), "neg": (N, N), "T1": (P, N), "T1p": (N, P), "T2": (P, M), "T4": (N, M),
                            "ZwZw": (W, W), "ZwZs": (W, S)}.items():
            out[key] += torch.outer(x, y) / n
    return out


def test_conv_moments_match_definition_and_shapes():
    g = fl.generator(1, "cpu")
    Z = distributions.laplace(150, 3, 3, generator=g, dtype=f64)
    w_star = torch.randn(3, generator=g, dtype=f64)
    W = torch.randn(4, 3, generator=g, dtype=f64)
    stack = theory.conv_moments(W, w_star, Z)
    assert tuple(stack) == theory.CONV_MOMENT_KEYS
    for r in range(4):
        single = theory.conv_moments(W[r], w_star, Z)
        direct = _direct_moments(W[r], w_star, Z)
        for key in theory.CONV_MOMENT_KEYS:
            assert single[key].shape == (3, 3) and stack[key].shape == (4, 3, 3)
            torch.testing.assert_close(single[key], direct[key], rtol=1e-12, atol=1e-14)
            torch.testing.assert_close(stack[key][r], single[key], rtol=1e-12, atol=1e-14)
    # T1' = T1ᵀ; Z_w = Z_S(w,w*) + Z_S(w,−w*) and Z_w* = Z_S(w,w*) + Z_S(−w,w*) give the two sums below
    torch.testing.assert_close(stack["T1p"], stack["T1"].transpose(1, 2))
    torch.testing.assert_close(stack["ZwZw"], stack["pos"] + stack["T1"] + stack["T1p"] + stack["neg"],
                               rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(stack["ZwZs"], stack["pos"] + stack["T2"] + stack["T1p"] + stack["T4"],
                               rtol=1e-12, atol=1e-14)


def test_conv_moments_chunking_does_not_change_results(monkeypatch):
    g = fl.generator(2, "cpu")
    Z = distributions.gaussian(701, 4, 3, generator=g, dtype=f64)
    w_star, W = torch.randn(3, generator=g, dtype=f64), torch.randn(5, 3, generator=g, dtype=f64)
    whole = theory.conv_moments(W, w_star, Z)
    monkeypatch.setattr(theory.moments, "_CHUNK_ELEMENTS", 300)            # chunks of a few inputs
    chunked = theory.conv_moments(W, w_star, Z)
    for key in theory.CONV_MOMENT_KEYS:
        torch.testing.assert_close(whole[key], chunked[key], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("k,p", [(1, 3), (3, 2), (5, 4)])
def test_four_region_gradient_equals_autograd(k, p):
    """∇ℓ = pos(w − w*) + (T1 + T1' + neg)w − (T2 + T1' + T4)w* = E[Z_wZ_wᵀ]w − E[Z_wZ_w*ᵀ]w* (Theorem 4.1's
    proof), float64."""
    g = fl.generator(10 + k, "cpu")
    Z = distributions.laplace(2000, k, p, generator=g, dtype=f64)
    w_star = torch.randn(p, generator=g, dtype=f64)
    W = torch.randn(3, p, generator=g, dtype=f64)
    four = theory.four_region_gradient(W, w_star, Z)
    assert four.shape == (3, p)
    torch.testing.assert_close(four, fl.gradient(W, w_star, Z), rtol=0, atol=1e-12)
    for r in range(3):
        w = W[r].clone().requires_grad_()
        fl.loss(w, w_star, Z).backward()
        torch.testing.assert_close(theory.four_region_gradient(W[r], w_star, Z), w.grad, rtol=0, atol=1e-12)
        M = theory.conv_moments(W[r], w_star, Z)
        torch.testing.assert_close(M["ZwZw"] @ W[r] - M["ZwZs"] @ w_star, w.grad, rtol=0, atol=1e-12)
        torch.testing.assert_close(four[r], w.grad, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# k = 1 and identical patches reduce to Part I


@pytest.mark.parametrize("p", [2, 3])
def test_k_equal_1_reduces_to_part_I(p):
    Z = distributions.gaussian(4000, 1, p, seed=20 + p, dtype=f64)
    w_star = torch.tensor([1.0, -0.5, 0.3][:p], dtype=f64)
    phis = torch.tensor([0.0, 0.4, math.pi / 2, 2.5], dtype=f64)
    kw = dict(n_directions=6, seed=3, return_se=True)
    for conv, one in [(theory.conv_gamma, theory.gamma), (theory.conv_L, theory.L),
                      (theory.conv_L_minus, theory.L_minus)]:
        (a, sa), (b, sb) = conv(Z, w_star, phis, **kw), one(Z, w_star, phis, **kw)
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(sa, sb, rtol=1e-9, atol=1e-14)
    torch.testing.assert_close(theory.conv_beta(Z, w_star, n_directions=6), theory.beta(Z, w_star, n_directions=6),
                               rtol=1e-12, atol=1e-14)
    W = torch.randn(3, p, generator=fl.generator(4, "cpu"), dtype=f64)
    M = theory.conv_moments(W, w_star, Z)
    A_pos, A_neg = theory.A_matrices(W, w_star, Z)
    torch.testing.assert_close(M["pos"], A_pos, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(M["neg"], A_neg, rtol=1e-12, atol=1e-14)
    for key in ("T1", "T1p", "T2", "T4"):
        assert bool((M[key] == 0).all())                            # disjoint regions of a single patch
    assert bool((theory.cross_sum(Z, w_star, phis, n_directions=6) == 0).all())
    assert float(theory.L_cross(Z, w_star, n_directions=6)) == 0.0
    assert float(theory.rho(Z)) < 1e-12                            # θ(Z_1, Z_avg) = 0 up to round-off


def test_identical_patches_have_no_cross_moments():
    """Z_1 = … = Z_k ⇒ T1 = T2 = T4 = 0 and L_cross = 0 (Assumption 4.2's remark); γ, L, β are the one-patch ones."""
    one = distributions.gaussian(5000, 1, 3, seed=7, dtype=f64)
    same = one.expand(-1, 4, -1).contiguous()
    w_star = torch.tensor([0.2, 1.0, -0.4], dtype=f64)
    W = torch.randn(5, 3, generator=fl.generator(5, "cpu"), dtype=f64)
    M = theory.conv_moments(W, w_star, same)
    for key in ("T1", "T1p", "T2", "T4"):
        assert bool((M[key] == 0).all()), key
    assert float(theory.L_cross(same, w_star, n_directions=8)) == 0.0
    assert float(theory.rho(same)) < 1e-7
    phis = torch.tensor([0.3, 1.2], dtype=f64)
    for conv, single in [(theory.conv_gamma, theory.gamma), (theory.conv_L, theory.L)]:
        torch.testing.assert_close(conv(same, w_star, phis, n_directions=8), single(one, w_star, phis, n_directions=8),
                                   rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(theory.gamma_avg(same, w_star, phis, n_directions=8),
                               theory.gamma(one, w_star, phis, n_directions=8), rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------------------------------------------
# Non-overlapping Gaussian patches: closed forms (derived below and in chapters/diagnose.md)


def gaussian_conv_constants(phi, k):
    """Closed forms for k i.i.d. N(0, I_p) patches (p ≥ 2), derived here and checked below by Monte Carlo.

    With m = E[z 1{wedge}] = √(2/π)·sin(β/2)/(2·…) … precisely: for a wedge of opening β in the plane of (w, w*),
    E[z 1{wedge}] = (sin(β/2)/√(2π))·b with b the wedge's unit bisector (Rayleigh mean √(π/2) times the arc
    integral (1/2π)∫u dα). Independent patches give E[Z_S Z_Sᵀ] = (1/k)A + ((k − 1)/k)m mᵀ and, for disjoint
    regions, E[Z_S Z_S'ᵀ] = ((k − 1)/k)m m'ᵀ. The wedges: S(w, w*) opening π − θ; S(w, −w*), S(−w, w*) opening θ.
    So, with θ = φ:
      γ = (π − θ − sin θ)/(2πk)   (in-plane eigenvalue orthogonal to b; the complement has (π − θ)/(2πk))
      L = (π − θ + sin θ + (k − 1)(1 + cos θ)/2)/(2πk)             (along b)
      L_{−w*} = (θ + sin θ + (k − 1)(1 − cos θ)/2)/(2πk)
      σ(T1) = σ(T2) = ((k − 1)/k) sin θ/(4π),  σ(T4) = ((k − 1)/k)(1 − cos θ)/(4π).
    Every direction at angle φ is equivalent (rotation invariance), so these are the min/max over directions too.
    """
    t = torch.as_tensor(phi, dtype=f64)
    s, c = torch.sin(t), torch.cos(t)
    return {"gamma": (math.pi - t - s) / (2 * math.pi * k),
            "L": (math.pi - t + s + (k - 1) * (1 + c) / 2) / (2 * math.pi * k),
            "L_minus": (t + s + (k - 1) * (1 - c) / 2) / (2 * math.pi * k),
            "cross": (k - 1) / k * (2 * s + 1 - c) / (4 * math.pi)}


def test_gaussian_closed_forms_reduce_to_part_I():
    phis = torch.linspace(0, math.pi, 9, dtype=f64)
    cf = gaussian_conv_constants(phis, 1)
    torch.testing.assert_close(cf["gamma"], theory.gaussian_gamma(phis))
    torch.testing.assert_close(cf["L"], theory.gaussian_L(phis))
    torch.testing.assert_close(cf["L_minus"], theory.gaussian_L_minus(phis))
    assert bool((cf["cross"] == 0).all())


@pytest.fixture(scope="module")
def gauss_conv():
    return distributions.gaussian(60_000, 4, 3, seed=31, dtype=f64), torch.tensor([0.6, -0.8, 0.0], dtype=f64)


def test_conv_estimators_match_gaussian_closed_forms(gauss_conv):
    """conv_gamma, conv_L, conv_L_minus and cross_sum agree with the closed forms within 4 error bars."""
    Z, w_star = gauss_conv
    phis = torch.tensor([0.3, math.pi / 4, 2.0], dtype=f64)
    cf = gaussian_conv_constants(phis, 4)
    for est, key in [(theory.conv_gamma, "gamma"), (theory.conv_L, "L"), (theory.conv_L_minus, "L_minus"),
                     (theory.cross_sum, "cross")]:
        value, se = est(Z, w_star, phis, n_directions=12, return_se=True)
        assert value.shape == se.shape == (3,) and bool((se > 0).all()) and bool((se < 0.01).all())
        assert ((value - cf[key]).abs() < 4 * se).all(), (key, value, cf[key], se)
        v1 = est(Z, w_star, float(phis[1]), n_directions=12)
        assert v1.dim() == 0
        torch.testing.assert_close(v1, value[1])


def test_L_cross_and_conv_beta_match_gaussian_closed_forms(gauss_conv):
    Z, w_star = gauss_conv
    grid = torch.tensor([0.2, 0.75, 1.5], dtype=f64)
    cf = gaussian_conv_constants(grid, 4)
    value, se = theory.L_cross(Z, w_star, grid, n_directions=12, return_se=True)
    closed = (cf["cross"] / grid).max()                              # 0.1088 at φ = 0.75
    assert abs(value - closed) < 4 * se, (value, closed, se)
    value, se = theory.conv_beta(Z, w_star, grid, n_directions=12, return_se=True)
    closed = (cf["L_minus"] / grid).max()
    assert abs(value - closed) < 4 * se, (value, closed, se)
    # Gaussian patches are far from close: Theorem 4.1's condition fails (γ(π/4) = 0.066 vs 6 L_cross ≈ 0.78)
    assert not theory.conv_condition_holds(float(cf["gamma"][1]), float(value))


def test_gaussian_loss_and_gradient_k4_p5_vs_monte_carlo():
    """The closed forms of chapters/conv_model.md with k = 4, p = 5 against filterlib.loss/gradient within 4
    standard errors."""
    n, k, p = 100_000, 4, 5
    Z = distributions.gaussian(n, k, p, seed=44, dtype=f64)
    w_star = torch.tensor([1.0, -0.5, 0.3, 0.8, 0.0], dtype=f64)
    W = torch.tensor([[0.2, 0.4, -0.6, 0.5, 0.1], [-1.0, 0.1, 0.0, -0.2, 0.7]], dtype=f64)
    pre = torch.einsum("nkp,rp->rnk", Z, W)
    resid = torch.relu(pre).mean(-1) - torch.relu(Z @ w_star).mean(-1)                  # (R, n)
    per_loss = 0.5 * resid ** 2
    per_grad = resid[..., None] * torch.einsum("rnk,nkp->rnp", (pre >= 0).to(f64), Z) / k
    torch.testing.assert_close(per_loss.mean(1), fl.loss(W, w_star, Z))
    torch.testing.assert_close(per_grad.mean(1), fl.gradient(W, w_star, Z))
    loss_se = per_loss.std(1) / math.sqrt(n)
    assert ((per_loss.mean(1) - theory.gaussian_loss(W, w_star, k)).abs() < 4 * loss_se).all()
    grad_se = per_grad.std(1) / math.sqrt(n)
    assert ((per_grad.mean(1) - theory.gaussian_gradient(W, w_star, k)).abs() < 4 * grad_se).all()


# ---------------------------------------------------------------------------------------------------------------
# Theorem 4.1


def test_conv_step_cap_contraction_and_iterations_formulas():
    assert theory.conv_step_cap(0.3, 0.5, 0.1, 0.01) == pytest.approx(0.24 / (2 * (0.5 + 0.1 + 0.4) ** 2), rel=1e-14)
    assert theory.conv_contraction_bound(0.1, 0.3, 0.01) == pytest.approx(1 - 0.1 * 0.24 / 2, rel=1e-15)
    assert theory.conv_iterations_bound(0.3, 0.5, 0.1, 0.01, 1e-3) == pytest.approx(
        1.0 / 0.24 ** 2 * math.log(1e3), rel=1e-14)
    assert isinstance(theory.conv_step_cap(0.3, 0.5, 0.1, 0.01), float)
    assert theory.conv_condition_holds(0.3, 0.049) is True and theory.conv_condition_holds(0.3, 0.05) is False
    # L_cross = 0 gives Part I's cap
    assert theory.conv_step_cap(0.3, 0.5, 0.1, 0.0) == pytest.approx(theory.step_cap(0.3, 0.5, 0.1), rel=1e-15)
    # tensors broadcast and stay tensors
    gam = torch.tensor([0.1, 0.2, 0.3], dtype=f64)
    torch.testing.assert_close(theory.conv_step_cap(gam, 0.5, 0.1, 0.01), (gam - 0.06) / (2 * 1.0 ** 2))
    assert theory.conv_condition_holds(gam, 0.03).tolist() == [False, True, True]
    torch.testing.assert_close(theory.conv_contraction_bound(0.5, gam, 0.01), 1 - 0.5 * (gam - 0.06) / 2)
    assert theory.conv_contraction_bound(0.5, 0.01, 0.01) > 1                        # no contraction promised
    with pytest.raises(ValueError, match=r"gamma must exceed 6·L_cross.*gamma = 0.1, 6·L_cross = 0.12"):
        theory.conv_step_cap(gam, 0.5, 0.1, 0.02)
    with pytest.raises(ValueError, match="gamma must exceed 6·L_cross"):
        theory.conv_iterations_bound(0.06, 0.5, 0.1, 0.01, 1e-3)


def test_theorem_4_1_contraction_along_gradient_descent():
    """Where γ(φ₀) > 6 L_cross (close patches with no mass near w*'s boundary: base σ = 0.5, σ² = 10⁻⁴), GD on the
    sample with the capped step obeys ‖u_{t+1}‖² ≤ (1 − η(γ(φ_t) − 6L_cross)/2)‖u_t‖² at every step (Theorem 4.1).
    The constants are those of the sample's empirical law, for which the theorem is exact (p = 2: no direction
    is missed)."""
    Z = distributions.close_patches(10_000, 5, 1e-4, base_sigma=0.5, seed=3, dtype=f64)
    grid = torch.linspace(0, PHI0, 30, dtype=f64)
    gam, L = theory.conv_gamma(Z, E1, grid), theory.conv_L(Z, E1, grid)
    b, Lx = theory.conv_beta(Z, E1), theory.L_cross(Z, E1)
    assert theory.conv_condition_holds(float(gam[-1]), float(Lx))
    eta = 0.95 * float(theory.conv_step_cap(gam, L, b, Lx).min())     # 5% margin for the grid's resolution
    w = torch.tensor([0.5, 0.8], dtype=f64)
    for _ in range(80):
        u2 = (w - E1).norm() ** 2
        gam_t = float(theory.conv_gamma(Z, E1, float(theory.phi_t(w, E1))))
        bound = theory.conv_contraction_bound(eta, gam_t, float(Lx))
        w = w - eta * fl.gradient(w, E1, Z)
        assert (w - E1).norm() ** 2 <= bound * u2 * (1 + 1e-12)
    assert (w - E1).norm() < 0.8


# ---------------------------------------------------------------------------------------------------------------
# Assumption 4.2 at small angles, and Theorem 4.3 on the close-patches law (Fig. 3(b))


def test_L_cross_supremum_is_at_small_angles_for_close_patches():
    """For close patches cross_sum(φ)/φ is largest as φ → 0 and does not vanish with σ²: a grid starting at π/32
    (default_beta_grid) misses it by a factor ≈ 8 at σ² = 10⁻⁴; the default grid (default_cross_grid) does not.
    With the supremum, Theorem 4.1's condition γ(φ₀) > 6 L_cross fails even at σ² = 10⁻⁴ (0.069 vs ≈ 0.32); with the
    coarse grid it appears to hold (0.069 vs 0.040)."""
    Z = distributions.close_patches(200_000, 5, 1e-4, seed=11, dtype=f64)
    phis = torch.tensor([0.003, math.pi / 32], dtype=f64)
    value, se = theory.cross_sum(Z, E1, phis, return_se=True)
    ratio, ratio_se = value / phis, se / phis                               # ≈ (0.051, 0.0066), se ≈ (0.005, 0.0003)
    assert ratio[0] - 3 * ratio_se[0] > 3 * (ratio[1] + 3 * ratio_se[1])
    fine, fine_se = theory.L_cross(Z, E1, return_se=True)                  # ≈ 0.054 ± 0.007
    coarse = theory.L_cross(Z, E1, theory.default_beta_grid(dtype=f64))
    assert fine - 3 * fine_se > 3 * coarse
    assert not theory.conv_condition_holds(float(theory.conv_gamma(Z, E1, PHI0)), float(fine - 3 * fine_se))
    assert theory.conv_condition_holds(float(theory.conv_gamma(Z, E1, PHI0)), float(coarse))
    grid = theory.default_cross_grid(dtype=f64)
    assert grid.shape == (24,) and bool((grid[1:] > grid[:-1]).all())
    assert abs(float(grid[0]) - 2 ** -9) < 1e-15 and abs(float(grid[-1]) - math.pi / 2) < 1e-15


def _rho_direct(Z):
    avg = Z.mean(1, keepdim=True)
    cos = (Z * avg).sum(-1) / (Z.norm(dim=-1) * avg.norm(dim=-1))
    return torch.arccos(cos.clamp(-1, 1)).max()


def test_rho_and_mu_direct():
    g = fl.generator(12, "cpu")
    Z = distributions.close_patches(3000, 4, 0.05, generator=g, dtype=f64)
    assert abs(float(theory.rho(Z)) - float(_rho_direct(Z))) < 1e-6         # arccos is coarse near 0
    # tiny angles are accurate (atan2): two unit patches at ±δ around e1
    d = 1e-9
    Zt = torch.tensor([[[math.cos(d), math.sin(d)], [math.cos(d), -math.sin(d)]]], dtype=f64)
    assert abs(float(theory.rho(Zt)) - d) < 1e-20
    # μ by counting: the paper's two bands around the signed angles ±π/2 (w* = e1, so the signed angle is atan2)
    grid = torch.tensor([0.05, 0.4, 1.0], dtype=f64)
    signed = torch.atan2(Z[..., 1], Z[..., 0])                                       # (n, k) in (−π, π]
    bands = [((signed - c).abs()[..., None] <= grid).to(f64).mean(0) for c in (math.pi / 2, -math.pi / 2)]
    expected = max(float((band / grid).max()) for band in bands)
    assert abs(float(theory.mu(Z, E1, grid)) - expected) < 1e-12
    union = ((torch.arccos(Z[..., 0].clamp(-1, 1)) - math.pi / 2).abs()[..., None] <= grid).to(f64).mean(0)
    assert float((union / grid).max()) > 1.5 * expected                          # not the union of the bands
    # a grid reaching π/2 gives μ ≥ 1/π (the two bands then cover the circle)
    assert float(theory.mu(Z, E1)) >= 1 / math.pi - 1e-12
    # p > 2 has no signed angle: the band around the whole boundary, |θ − π/2| ≤ φ
    Z3 = distributions.gaussian(2000, 2, 3, generator=g, dtype=f64)
    w3 = torch.tensor([0.0, 2.0, 0.0], dtype=f64)
    ang3 = torch.arccos((Z3[..., 1] / Z3.norm(dim=-1)).clamp(-1, 1))
    inside3 = ((ang3 - math.pi / 2).abs()[..., None] <= grid).to(f64).mean(0)
    assert abs(float(theory.mu(Z3, w3, grid)) - float((inside3 / grid).max())) < 1e-12
    # zero patches are skipped by ρ (a zero patch leaves the direction of Z_avg unchanged) and lie outside every band
    Zz = torch.cat([Z, torch.zeros(3000, 1, 2, dtype=f64)], dim=1)
    assert abs(float(theory.rho(Zz)) - float(theory.rho(Z))) < 1e-12
    assert float(theory.mu(Zz, E1, grid)) <= float(theory.mu(Z, E1, grid)) + 1e-12


@pytest.mark.parametrize("sigma2,seed", [(1.0, 1), (0.1, 2), (0.01, 3), (1e-4, 4)])
def test_theorem_4_3_on_close_patches(sigma2, seed):
    """Theorem 4.3's claims γ(φ₀) ≥ γ_avg(φ₀) − 4(1 − cos ρ) and L_cross ≤ 3μ on samples of the Fig. 3(b) law
    (k = 5, w* = e1, φ₀ = arcsin 0.94). Both hold; the first is loose unless ρ is small (ρ is a sample maximum),
    the second very loose (μ ≥ 1/π on a grid reaching π/2)."""
    Z = distributions.close_patches(20_000, 5, sigma2, seed=seed, dtype=f64)
    b = theory.closeness_bounds(Z, E1, PHI0)
    assert set(b) == {"gamma", "gamma_avg", "rho", "lower_bound", "L_cross", "mu", "upper_bound"}
    assert float(b["gamma"]) >= float(b["lower_bound"]), b
    assert float(b["L_cross"]) <= float(b["upper_bound"]), b
    torch.testing.assert_close(b["lower_bound"], b["gamma_avg"] - 4 * (1 - torch.cos(b["rho"])))
    torch.testing.assert_close(b["upper_bound"], 3 * b["mu"])
    assert (float(b["lower_bound"]) > 0) == (sigma2 < 0.001)      # informative only for nearly identical patches


def test_float32_angles_are_accepted_with_float64_samples():
    """A float32 grid (default dtype) ends at float32(π/2) > π/2 in float64; it is accepted and clamped."""
    Z = distributions.close_patches(500, 3, 0.1, seed=6, dtype=f64)
    grid32 = theory.default_cross_grid(dtype=torch.float32)
    torch.testing.assert_close(theory.L_cross(Z, E1, grid32), theory.L_cross(Z, E1, grid32.double().clamp(max=math.pi / 2)))
    assert torch.isfinite(theory.conv_gamma(Z, E1, torch.tensor(math.pi, dtype=torch.float32)))
    assert torch.isfinite(theory.gamma_avg(Z, E1, torch.tensor(math.pi, dtype=torch.float32)))


def test_closeness_bounds_vector_phi():
    Z = distributions.close_patches(2000, 3, 0.01, seed=2, dtype=f64)
    phis = torch.tensor([0.5, 1.0], dtype=f64)
    b = theory.closeness_bounds(Z, E1, phis, phis=torch.tensor([0.1, 0.5], dtype=f64))
    assert b["gamma"].shape == b["gamma_avg"].shape == b["lower_bound"].shape == (2,)
    assert b["rho"].dim() == b["L_cross"].dim() == b["mu"].dim() == 0
    torch.testing.assert_close(b["gamma_avg"], theory.gamma(Z.mean(1, keepdim=True), E1, phis))


# ---------------------------------------------------------------------------------------------------------------
# Input checks


@pytest.fixture(scope="module")
def small():
    Z = distributions.gaussian(100, 3, 3, seed=0, dtype=f64)
    return Z, torch.tensor([1.0, 0.0, 0.0], dtype=f64)


BAD = [
    (lambda Z, ws: theory.conv_gamma(Z, torch.zeros(3, dtype=f64), 0.5), ValueError, "w_star must be non-zero"),
    (lambda Z, ws: theory.L_cross(Z, torch.zeros(3, dtype=f64)), ValueError, "w_star must be non-zero"),
    (lambda Z, ws: theory.conv_moments(ws, torch.zeros(3, dtype=f64), Z), ValueError, "w_star must be non-zero"),
    (lambda Z, ws: theory.mu(Z, torch.zeros(3, dtype=f64)), ValueError, "w_star must be non-zero"),
    (lambda Z, ws: theory.conv_gamma(Z, ws[:2], 0.5), ValueError, "w_star must have shape"),
    (lambda Z, ws: theory.conv_L(Z, ws, 3.5), ValueError, "phi must lie in"),
    (lambda Z, ws: theory.conv_L_minus(Z, ws, -0.1), ValueError, "phi must lie in"),
    (lambda Z, ws: theory.cross_sum(Z, ws, [0.2, 4.0]), ValueError, "phi must lie in"),
    (lambda Z, ws: theory.gamma_avg(Z, ws, 4.0), ValueError, "phi must lie in"),
    (lambda Z, ws: theory.closeness_bounds(Z, ws, -1.0), ValueError, "phi must lie in"),
    (lambda Z, ws: theory.conv_gamma(Z, ws, float("nan")), ValueError, "phi contains NaN"),
    (lambda Z, ws: theory.L_cross(Z, ws, [0.0, 0.5]), ValueError, r"phis must lie in \(0"),
    (lambda Z, ws: theory.L_cross(Z, ws, [0.5, 2.0]), ValueError, r"phis must lie in \(0"),
    (lambda Z, ws: theory.conv_beta(Z, ws, [0.5, 2.0]), ValueError, r"phis must lie in \(0"),
    (lambda Z, ws: theory.mu(Z, ws, [0.0]), ValueError, r"phis must lie in \(0"),
    (lambda Z, ws: theory.conv_gamma(Z[:0], ws, 0.5), ValueError, "Z must not be empty"),
    (lambda Z, ws: theory.conv_gamma(Z[:, :0], ws, 0.5), ValueError, "Z must not be empty"),   # k = 0
    (lambda Z, ws: theory.L_cross(Z[:0], ws), ValueError, "Z must not be empty"),
    (lambda Z, ws: theory.rho(Z[:0]), ValueError, "Z must not be empty"),
    (lambda Z, ws: theory.conv_moments(ws, ws, Z[:0]), ValueError, "Z must not be empty"),
    (lambda Z, ws: theory.conv_gamma(Z[:, 0], ws, 0.5), ValueError, "Z must have 3 dimensions"),
    (lambda Z, ws: theory.rho(Z[0]), ValueError, "Z must have 3 dimensions"),
    (lambda Z, ws: theory.cross_sum(Z.clone().fill_(float("nan")), ws, 0.5), ValueError, "Z contains NaN"),
    (lambda Z, ws: theory.rho(torch.cat([Z[:1], -Z[:1]], 1)), ValueError, "Z has an input .* Z_avg is 0"),
    (lambda Z, ws: theory.four_region_gradient(torch.ones(4, dtype=f64), ws, Z), ValueError, "w must have size p=3"),
    (lambda Z, ws: theory.conv_moments(ws.float(), ws, Z), TypeError, "dtype"),
    (lambda Z, ws: theory.conv_gamma(Z, ws, 0.5, n_directions=0), ValueError, "n_directions must be a positive"),
    (lambda Z, ws: theory.L_cross(Z, ws, seed=-1), ValueError, "seed must be a non-negative"),
    (lambda Z, ws: theory.cross_sum(Z, ws, 0.5, return_se=True, n_batches=1), ValueError, "n_batches must be at"),
    (lambda Z, ws: theory.L_cross(Z[:15], ws, return_se=True), ValueError, "needs at least 20"),
    (lambda Z, ws: theory.conv_beta(Z, ws, return_se="yes"), TypeError, "return_se must be True or False"),
    (lambda Z, ws: theory.conv_gamma(Z[..., :1], ws[:1], 0.5), ValueError, "w_star must have at least 2"),
    (lambda Z, ws: theory.conv_step_cap(0.1, 0.5, 0.1, 0.02), ValueError, "gamma must exceed 6·L_cross"),
    (lambda Z, ws: theory.conv_step_cap(0.1, 0.5, 0.1, -0.01), ValueError, "L_cross must be ≥ 0"),
    (lambda Z, ws: theory.conv_step_cap(0.1, -0.5, 0.1, 0.0), ValueError, "L must be ≥ 0"),
    (lambda Z, ws: theory.conv_step_cap(0.1, 0.5, float("nan"), 0.0), ValueError, "beta contains NaN"),
    (lambda Z, ws: theory.conv_contraction_bound(-0.1, 0.5, 0.0), ValueError, "eta must be ≥ 0"),
    (lambda Z, ws: theory.conv_condition_holds(0.3, -1.0), ValueError, "L_cross must be ≥ 0"),
    (lambda Z, ws: theory.conv_condition_holds(True, 0.0), TypeError, "gamma must be a real number"),
    (lambda Z, ws: theory.conv_iterations_bound(0.3, 0.5, 0.1, 0.0, 1.0), ValueError, "eps must lie in"),
    (lambda Z, ws: theory.default_cross_grid(smallest=0.5), ValueError, "smallest must be below"),
    (lambda Z, ws: theory.default_cross_grid(q_small=-1), ValueError, "q_small must be a non-negative"),
]


@pytest.mark.parametrize("call,exc,match", BAD)
def test_bad_input_names_the_parameter(small, call, exc, match):
    Z, w_star = small
    with pytest.raises(exc, match=match):
        call(Z, w_star)


# --------------------------------------------------------------------------------------------------------------
# The small-angle limit of cross_sum(φ)/φ for close patches (derived in chapters/conv_model.md)


def test_angular_mixture_density_integrates_to_one_and_matches_the_sampler():
    from filterlib import distributions
    grid = torch.linspace(-math.pi / 2, 3 * math.pi / 2, 200_001, dtype=f64)
    dens = distributions.angular_mixture_density(grid, 0.8)
    assert abs(float(torch.trapezoid(dens, grid)) - 1) < 1e-6
    Z = distributions.angular_mixture(400_000, 0.8, seed=3, dtype=f64)[:, 0]
    alpha = torch.remainder(torch.atan2(Z[:, 1], Z[:, 0]) + math.pi / 2, 2 * math.pi) - math.pi / 2
    edges = torch.linspace(-math.pi / 2, 3 * math.pi / 2, 21, dtype=f64)
    counts = torch.histc(alpha, bins=20, min=-math.pi / 2, max=3 * math.pi / 2)
    width = float(edges[1] - edges[0])
    fine = torch.linspace(0, 1, 401, dtype=f64)
    expected = torch.stack([torch.trapezoid(distributions.angular_mixture_density(a + width * fine, 0.8), a + width * fine)
                            for a in edges[:-1]]) * alpha.numel()
    assert float(((counts - expected).abs() / expected.sqrt()).max()) < 4.5    # every bin within 4.5 SE


def test_angular_mixture_density_at_the_boundary_is_one_truncated_component():
    from filterlib import distributions
    s = 1.0
    edge = math.exp(-(math.pi / 2) ** 2 / 2) / math.sqrt(2 * math.pi) / math.erf(math.pi / (2 * math.sqrt(2)))
    got = distributions.angular_mixture_density(torch.tensor([math.pi / 2, -math.pi / 2, 5 * math.pi / 2], dtype=f64), s)
    assert torch.allclose(got, torch.full((3,), 0.5 * edge, dtype=f64), rtol=1e-12)


def test_cross_sum_over_phi_tends_to_the_derived_limit_for_close_patches():
    from filterlib import distributions
    w_star = torch.tensor([1.0, 0.0], dtype=f64)
    Z = distributions.close_patches(400_000, 5, 1e-4, seed=1, dtype=f64)
    phi = 0.002                                            # well below the jitter's spread 0.01
    value, se = theory.cross_sum(Z, w_star, phi, n_directions=2, return_se=True)
    limit = theory.close_patches_cross_limit(5, 1.0)
    assert abs(limit - 0.4 * 2 * 0.5 * 0.13145) < 1e-4    # (k−1)/(2k)·2·½·φ_1(π/2)/(2Φ(π/2)−1)
    assert abs(float(value) / phi - limit) < 3 * float(se) / phi


def test_cross_limit_bad_input():
    with pytest.raises(ValueError, match="k must be a positive"):
        theory.close_patches_cross_limit(0)
    with pytest.raises(ValueError, match="base_sigma"):
        theory.close_patches_cross_limit(5, -1.0)
    assert theory.close_patches_cross_limit(1) == 0.0


# ---------------------------------------------------------------------------------------------------------------
# The population moments of the close-patches law by quadrature, and Theorem 4.1's proof along a run


def _batch_means(Z, W, n_batches=20):
    """conv_moments of the filters W on n_batches disjoint batches of Z: (mean, standard error) of each moment."""
    parts = [theory.conv_moments(W, E1, z) for z in Z.chunk(n_batches)]
    out = {}
    for key in theory.CONV_MOMENT_KEYS:
        stack = torch.stack([part[key] for part in parts])
        out[key] = (stack.mean(0), stack.std(0) / math.sqrt(n_batches))
    return out


@pytest.mark.parametrize("sigma2, base_sigma", [(0.1, 1.0), (1e-2, 0.5), (10.0, 1.0)])
def test_close_patches_moments_match_monte_carlo(sigma2, base_sigma):
    """Each entry of each moment agrees with its Monte-Carlo mean on 200 000 inputs of the sampler within 4.5
    standard errors (batch means; 8 moments × 4 entries × 3 filters per law)."""
    Z = distributions.close_patches(200_000, 5, sigma2, base_sigma=base_sigma, seed=21, dtype=f64)
    W = torch.tensor([[math.cos(0.3), math.sin(0.3)], [0.4, -1.1], [-1.0, 0.2]], dtype=f64)
    exact = theory.close_patches_moments_at(W, E1, 5, sigma2, base_sigma=base_sigma)
    for key, (mean, se) in _batch_means(Z, W).items():
        z = (exact[key] - mean).abs() / (se + 1e-12)
        assert float(z.max()) < 4.5, (key, exact[key], mean, se)


def test_close_patches_gradient_two_forms_and_monte_carlo():
    """The four-region gradient equals E[Z_wZ_wᵀ]w − E[Z_wZ_w*ᵀ]w* built from its own arcs (an independent path
    through the quadrature), for any w* (rotation) and scale; and it matches fl.gradient on a large sample."""
    w_star = torch.tensor([0.6, -0.8], dtype=f64) * 1.7
    W = torch.tensor([[1.2, 0.3], [0.1, -1.4], [-0.5, -0.5], [1.0, -1.3599999]], dtype=f64)
    M = theory.close_patches_moments_at(W, w_star, 5, 1e-2, base_sigma=0.7)
    residual = (M["ZwZw"] @ W[..., None])[..., 0] - M["ZwZs"] @ w_star
    g = theory.close_patches_gradient(W, w_star, 5, 1e-2, base_sigma=0.7)
    assert float((g - residual).abs().max()) < 1e-11
    assert theory.close_patches_gradient(W[0], w_star, 5, 1e-2, base_sigma=0.7).shape == (2,)
    Z = distributions.close_patches(200_000, 5, 1e-2, base_sigma=0.7, w_star=w_star, seed=5, dtype=f64)
    parts = torch.stack([fl.gradient(W, w_star, z) for z in Z.chunk(20)])
    z = (g - parts.mean(0)).abs() / (parts.std(0) / math.sqrt(20))
    assert float(z.max()) < 4.5


def test_close_patches_moments_k1_and_thin_regions():
    """k = 1: no cross moments, and E[ZZᵀ1{wᵀZ ≥ 0}] + E[ZZᵀ1{wᵀZ < 0}] has trace E‖Z‖² = 1. At tiny angles the
    moments of the regions of width θ are linear in θ up to O(θ/σ) (relative accuracy survives θ = 10⁻⁷), and
    cross_sum(θ)/θ approaches the derived limit (close_patches_cross_limit) when θ ≪ σ ≪ 1."""
    W = torch.tensor([[math.cos(0.9), math.sin(0.9)], [-math.cos(0.9), -math.sin(0.9)]], dtype=f64)
    M1 = theory.close_patches_moments_at(W, E1, 1, 0.3)
    assert all(float(M1[key].abs().max()) == 0.0 for key in ("T1", "T1p", "T2", "T4"))
    assert abs(float(torch.trace(M1["ZwZw"][0] + M1["ZwZw"][1])) - 1.0) < 1e-12
    th = torch.tensor([1e-7, 2e-7], dtype=f64)
    M = theory.close_patches_moments_at(torch.stack([torch.cos(th), torch.sin(th)], 1), E1, 5, 1e-2)
    for key in ("neg", "T1", "T2"):                                # linear up to O(θ/σ) = 10⁻⁶
        assert abs(float(M[key][1].norm() / M[key][0].norm()) - 2.0) < 1e-5
    M = theory.close_patches_moments_at(torch.stack([torch.cos(th), torch.sin(th)], 1), E1, 5, 1e-6)
    sv = lambda A: float(torch.linalg.matrix_norm(A, ord=2))
    ratio = (sv(M["T1"][0]) + sv(M["T2"][0]) + sv(M["T4"][0])) / 1e-7
    assert abs(ratio / theory.close_patches_cross_limit(5, 1.0) - 1) < 2e-3


@pytest.mark.parametrize("sigma2, base_sigma", [(1e-4, 1.0), (2.0, 1.0), (1e-3, 0.5)])
def test_close_patches_moments_at_agrees_with_the_angle_quadrature(sigma2, base_sigma):
    """Two independent quadratures of the same moments: close_patches_moments_at (antiderivative tables read by a
    Hermite interpolant) and close_patches_moments (direct panels), at both filters of several angles."""
    for phi in (1e-6, 0.02, 0.7, 1.4):
        w = torch.tensor([[math.cos(phi), math.sin(phi)], [math.cos(phi), -math.sin(phi)]], dtype=f64)
        mine = theory.close_patches_moments_at(w, E1, 5, sigma2, base_sigma=base_sigma)
        for i, other in enumerate(theory.close_patches_moments(phi, 5, sigma2, base_sigma)):
            for key in ("pos", "neg", "T1", "T2", "T4"):
                scale = float(other[key].abs().max()) + 1e-300
                assert float((mine[key][i] - other[key]).abs().max()) <= 1e-8 * scale + 1e-13, (phi, i, key)


def test_close_patches_moments_nearly_uniform_jitter_is_independent_uniform_patches():
    """With σ² = 10⁴ the jitter is uniform on the circle to 5·10⁻⁴, so the patches are nearly independent and
    uniform: σ_max(T1) = σ_max(T2) = (k − 1)/k · sin θ/(2π²) and σ_max(T4) = (k − 1)/k · sin²(θ/2)/π²."""
    th = torch.tensor([0.2, 1.0, 2.5], dtype=f64)
    M = theory.close_patches_moments_at(torch.stack([torch.cos(th), torch.sin(th)], 1), E1, 4, 1e4)
    sv = lambda A: torch.linalg.matrix_norm(A, ord=2)
    f = 3 / 4
    torch.testing.assert_close(sv(M["T1"]), f * torch.sin(th) / (2 * math.pi ** 2), rtol=2e-3, atol=0)
    torch.testing.assert_close(sv(M["T2"]), f * torch.sin(th) / (2 * math.pi ** 2), rtol=2e-3, atol=0)
    torch.testing.assert_close(sv(M["T4"]), f * torch.sin(th / 2) ** 2 / math.pi ** 2, rtol=2e-3, atol=0)


def test_close_patches_descent_records_the_run():
    """A constant step reproduces the plain loop with close_patches_gradient; the recorded moments are those of
    close_patches_moments_at at the iterates; a run stops once within tol."""
    w0 = torch.tensor([[0.5, 0.8], [1.3, -0.4]], dtype=f64)
    run = theory.close_patches_descent(w0, E1, 5, 1e-3, 0.05, base_sigma=0.5, steps=5)
    w = w0.clone()
    for t in range(5):
        torch.testing.assert_close(run["w"][t], w, rtol=0, atol=1e-14)
        w = w - 0.05 * theory.close_patches_gradient(w, E1, 5, 1e-3, base_sigma=0.5)
    torch.testing.assert_close(run["w"][5], w, rtol=0, atol=1e-14)
    M = theory.close_patches_moments_at(run["w"][3], E1, 5, 1e-3, base_sigma=0.5)
    for key in ("pos", "neg", "T1", "T1p", "T2", "T4"):
        torch.testing.assert_close(run["moments"][key][3], M[key], rtol=0, atol=1e-14)
    assert run["eta"].shape == (5, 2) and bool(run["active"].all())
    near = torch.tensor([[1.0 + 1e-3, 0.0], [0.5, 0.8]], dtype=f64)
    run = theory.close_patches_descent(near, E1, 5, 1e-3, 0.05, base_sigma=0.5, steps=3, tol=1e-2)
    assert run["active"][:, 0].tolist() == [False] * 3 and float(run["eta"][:, 0].abs().max()) == 0.0
    torch.testing.assert_close(run["w"][-1, 0], near[0], rtol=0, atol=0)


def test_conv_step_schedule_is_the_running_minimum_of_the_cap():
    phis = torch.tensor([1e-3, 0.1, 0.5, 1.0], dtype=f64)
    gam = torch.tensor([0.10, 0.09, 0.06, 0.05], dtype=f64)
    L = torch.tensor([0.40, 0.30, 0.38, 0.35], dtype=f64)
    schedule = theory.conv_step_schedule(phis, gam, L, 0.1, 0.005)
    caps = theory.conv_step_cap(gam, L, 0.1, 0.005)
    got = schedule(torch.tensor([0.0, 1e-3, 0.05, 0.3, 0.5, 1.0], dtype=f64))
    expected = [caps[0], caps[0], min(caps[:2]), min(caps[:3]), min(caps[:3]), min(caps)]
    torch.testing.assert_close(got, torch.stack(expected))
    with pytest.raises(ValueError, match="beyond the grid"):
        schedule(torch.tensor([1.1], dtype=f64))
    with pytest.raises(ValueError, match="gamma must exceed 6·L_cross"):
        theory.conv_step_schedule(phis, gam, L, 0.1, 0.01)
    with pytest.raises(ValueError, match="increasing"):
        theory.conv_step_schedule(phis.flip(0), gam, L, 0.1, 0.005)
    with pytest.raises(ValueError, match="shape of phis"):
        theory.conv_step_schedule(phis, gam[:3], L, 0.1, 0.005)


def test_conv_proof_terms_decompose_the_inner_product():
    """⟨∇ℓ, u⟩ = uᵀpos u + dropped + cross with ∇ℓ the four-region gradient on a sample; the dropped terms are
    non-negative (a per-input property), the paper's bound cross ≥ −cross_bound holds when ‖u‖ ≤ ‖w*‖, and θ is
    accurate at tiny angles."""
    Z = distributions.close_patches(20_000, 5, 0.1, seed=8, dtype=f64)
    W = torch.tensor([[0.5, 0.8], [1.2, -0.3], [0.3, 0.1]], dtype=f64)
    M = theory.conv_moments(W, E1, Z)
    T = theory.conv_proof_terms(W, E1, M)
    g = theory.four_region_gradient(W, E1, Z)
    u = W - E1
    torch.testing.assert_close(T["inner"], (g * u).sum(1), rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(T["inner"], T["quadratic"] + T["dropped"] + T["cross"], rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(T["gradient_norm"], g.norm(dim=1), rtol=1e-12, atol=1e-15)
    assert bool((T["dropped"] >= 0).all()) and bool((T["cross"] >= -T["cross_bound"]).all())
    torch.testing.assert_close(T["theta"], torch.atan2(W[:, 1], W[:, 0]).abs(), rtol=1e-14, atol=0)
    tiny = torch.tensor([[1.0, 3e-9]], dtype=f64)
    T = theory.conv_proof_terms(tiny, E1, theory.close_patches_moments_at(tiny, E1, 5, 1e-4))
    assert abs(float(T["theta"][0]) / 3e-9 - 1) < 1e-12


@pytest.mark.parametrize("call, exc, match", [
    (lambda: theory.close_patches_moments_at(torch.ones(3, dtype=f64), E1, 5, 0.1), ValueError, "w"),
    (lambda: theory.close_patches_moments_at(torch.zeros(2, dtype=f64), E1, 5, 0.1), ValueError, "w"),
    (lambda: theory.close_patches_moments_at(E1, torch.zeros(2, dtype=f64), 5, 0.1), ValueError, "w_star"),
    (lambda: theory.close_patches_gradient(E1, E1, 0, 0.1), ValueError, "k"),
    (lambda: theory.close_patches_gradient(E1, E1, 5, -0.1), ValueError, "sigma2"),
    (lambda: theory.close_patches_moments_at(E1, E1, 5, 0.1, base_sigma=0.0), ValueError, "base_sigma"),
    (lambda: theory.close_patches_descent(E1, E1, 5, 0.1, -1.0), ValueError, "eta"),
    (lambda: theory.close_patches_descent(E1, E1, 5, 0.1, 0.1, tol=-1.0), ValueError, "tol"),
])
def test_close_patches_bad_input_names_the_parameter(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_theorem_4_1_proof_holds_along_a_population_run():
    """Where the condition holds (base σ = 0.5, σ² = 10⁻⁴), every inequality of the proof holds at each of the
    first steps of population gradient descent with the theorem's largest step, from the start of Figure 3 and two
    others; the pairs have one entry per step and run."""
    base, s2 = 0.5, 1e-4
    w0 = torch.tensor([[0.5, 0.8], [1.6, -0.5], [0.4, 0.3]], dtype=f64)
    phi0 = float(theory.phi_t(w0, E1).max())
    grid = torch.cat([torch.logspace(-8, -1.5, 12, dtype=f64), torch.linspace(0.04, phi0, 40, dtype=f64)])
    W = torch.stack([torch.cos(grid), torch.sin(grid)], 1)
    eig = torch.linalg.eigvalsh(theory.close_patches_moments_at(W, E1, 5, s2, base_sigma=base)["pos"])
    beta, Lx = theory.close_patches_beta(5, s2, base), theory.close_patches_L_cross(5, s2, base)
    schedule = theory.conv_step_schedule(grid, eig[:, 0], eig[:, 1], beta, Lx)
    run = theory.close_patches_descent(w0, E1, 5, s2, schedule, base_sigma=base, steps=6)
    checks = theory.conv_proof_checks(run, E1, grid, eig[:, 0], eig[:, 1], beta, Lx)
    assert set(checks) == {"dropped", "quadratic", "cross", "assumption", "angle", "inner", "gradient", "contraction"}
    for name, (small, large) in checks.items():
        assert small.shape == large.shape == (18,), name
        assert bool((small <= large + 1e-12 * large.abs()).all()), name
    u = (run["w"] - E1).norm(dim=-1)
    torch.testing.assert_close(checks["contraction"][0], (u[1:] ** 2).reshape(-1), rtol=0, atol=0)
