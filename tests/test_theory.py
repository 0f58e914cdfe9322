"""filterlib.theory: A-matrices and the gradient identity, Lemma A.1, Monte-Carlo γ/L/L_{−w*}/β against closed forms
and quadrature, Gaussian population loss and gradient, Theorem 3.2 quantities, input checks."""
import math

import pytest
import torch

import filterlib as fl
from filterlib import distributions, theory

f64 = torch.float64
PHIS = torch.tensor([0.3, math.pi / 4, math.pi / 2, 2.0], dtype=f64)


@pytest.fixture(scope="module")
def gauss():
    """A large float64 Gaussian one-neuron sample (p = 4) and a teacher direction."""
    Z = distributions.gaussian(200_000, 1, 4, seed=21, dtype=f64)
    w_star = torch.tensor([0.5, -1.0, 0.25, 2.0], dtype=f64)
    return Z, w_star


# ---------------------------------------------------------------------------------------------------------------
# A-matrices, the gradient identity and Lemma A.1 (Theorem 3.1, Appendix A; chapters/one_neuron.md)


def test_A_matrices_shapes_and_batching():
    g = fl.generator(1, "cpu")
    Z = distributions.gaussian(300, 1, 5, generator=g, dtype=f64)
    w_star = torch.randn(5, generator=g, dtype=f64)
    W = torch.randn(7, 5, generator=g, dtype=f64)
    A_pos, A_neg = theory.A_matrices(W, w_star, Z)
    assert A_pos.shape == A_neg.shape == (7, 5, 5)
    for r in range(7):
        a, b = theory.A_matrices(W[r], w_star, Z)
        assert a.shape == (5, 5)
        torch.testing.assert_close(A_pos[r], a, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(A_neg[r], b, rtol=1e-12, atol=1e-14)
        # direct definition, by a Python loop (the function itself is vectorised)
        X = Z[:, 0]
        act, pos = X @ W[r] >= 0, X @ w_star >= 0
        direct = sum(torch.outer(x, x) for x in X[act & pos]) / 300
        torch.testing.assert_close(a, direct, rtol=1e-12, atol=1e-14)
    # symmetric PSD, and A_{w,w*} + A_{w,−w*} = A_w = mean[ZZᵀ 1{wᵀZ ≥ 0}]
    torch.testing.assert_close(A_pos, A_pos.transpose(1, 2))
    assert torch.linalg.eigvalsh(A_neg).min() > -1e-14
    X = Z[:, 0]
    A_w = torch.einsum("rn,np,nq->rpq", (W @ X.T >= 0).to(f64), X, X) / 300
    torch.testing.assert_close(A_pos + A_neg, A_w, rtol=1e-12, atol=1e-14)


def test_A_matrices_chunking_does_not_change_results(monkeypatch):
    g = fl.generator(2, "cpu")
    Z = distributions.gaussian(1001, 1, 3, generator=g, dtype=f64)
    w_star, W = torch.randn(3, generator=g, dtype=f64), torch.randn(4, 3, generator=g, dtype=f64)
    whole = theory.A_matrices(W, w_star, Z)
    monkeypatch.setattr(theory.moments, "_CHUNK_ELEMENTS", 50)          # forces chunks of a few samples
    chunked = theory.A_matrices(W, w_star, Z)
    for a, b in zip(whole, chunked):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("p", [2, 3, 6])
def test_gradient_identity(p):
    """Autograd of filterlib.loss (k = 1) = A_{w,w*}(w − w*) + A_{w,−w*} w = A_w w − A_{w,w*} w* on the same sample."""
    g = fl.generator(30 + p, "cpu")
    Z = distributions.gaussian(3000, 1, p, generator=g, dtype=f64)
    w_star = torch.randn(p, generator=g, dtype=f64)
    for _ in range(4):
        w = torch.randn(p, generator=g, dtype=f64).requires_grad_()
        fl.loss(w, w_star, Z).backward()
        wd = w.detach()
        A_pos, A_neg = theory.A_matrices(wd, w_star, Z)
        torch.testing.assert_close(w.grad, A_pos @ (wd - w_star) + A_neg @ wd, rtol=0, atol=1e-10)
        torch.testing.assert_close(w.grad, (A_pos + A_neg) @ wd - A_pos @ w_star, rtol=0, atol=1e-10)


def test_lemma_A1_per_sample_and_on_the_sample():
    """(w − w*)ᵀZ 1{wᵀZ ≥ 0}(σ(wᵀZ) − σ(w*ᵀZ)) ≥ 1{S(w, w*)}((w − w*)ᵀZ)² for every sample (0 violations), and
    ⟨∇ℓ, w − w*⟩ = uᵀA_{w,w*}u + uᵀA_{w,−w*}w with both terms ≥ 0."""
    g = fl.generator(5, "cpu")
    p = 5
    Z = distributions.gaussian(100_000, 1, p, generator=g, dtype=f64)
    X = Z[:, 0]
    w_star = torch.randn(p, generator=g, dtype=f64)
    violations = 0
    for w in torch.randn(8, p, generator=g, dtype=f64):
        a, b = X @ w, X @ w_star
        uz = X @ (w - w_star)
        lhs = uz * (a >= 0) * (torch.relu(a) - torch.relu(b))
        rhs = ((a >= 0) & (b >= 0)) * uz ** 2
        violations += int((lhs < rhs - 1e-12 * (1 + rhs)).sum())
        A_pos, A_neg = theory.A_matrices(w, w_star, Z)
        u = w - w_star
        t1, t2 = u @ A_pos @ u, u @ A_neg @ w
        assert t1 >= 0 and t2 >= -1e-15
        torch.testing.assert_close(fl.gradient(w, w_star, Z) @ u, t1 + t2, rtol=1e-10, atol=1e-12)
    assert violations == 0
    W = torch.randn(50, p, generator=g, dtype=f64)
    counts = theory.lemma_a1_violations(W, w_star, Z)
    assert counts.shape == (50,) and counts.dtype == torch.int64 and int(counts.sum()) == 0
    assert theory.lemma_a1_violations(W[0], w_star, Z).shape == ()


def test_lemma_a1_slack_by_region():
    """Where Lemma A.1's per-sample inequality is tight: equality on S(w, w*) and where wᵀZ < 0; slack
    ((w − w*)ᵀZ)(wᵀZ) > 0 on S(w, −w*). Hand-made Z, one sample in each region."""
    w_star = torch.tensor([1.0, 0.0], dtype=f64)
    w = torch.tensor([1.0, 1.0], dtype=f64)
    Z = torch.tensor([[[1.0, 0.5]], [[-0.5, 1.0]], [[-1.0, -0.2]]], dtype=f64)   # S(w,w*), S(w,−w*), wᵀZ < 0
    a, b, uz = Z[:, 0] @ w, Z[:, 0] @ w_star, Z[:, 0] @ (w - w_star)
    lhs = uz * (a >= 0) * (torch.relu(a) - torch.relu(b))
    rhs = ((a >= 0) & (b >= 0)) * uz ** 2
    torch.testing.assert_close(lhs - rhs, torch.tensor([0.0, 1.0 * 0.5, 0.0], dtype=f64))
    assert int(theory.lemma_a1_violations(w, w_star, Z)) == 0


def test_A_matrices_gaussian_eigenvalues(gauss):
    """Eigenvalues (π − θ ± sin θ)/(2π), (π − θ)/(2π) and (θ ± sin θ)/(2π), θ/(2π) (derived in
    chapters/smoothness.md)."""
    Z, w_star = gauss
    w = theory.directions_at_angle(w_star, 1.2, 1, seed=0)[0]
    A_pos, A_neg = theory.A_matrices(w, w_star, Z)
    th = 1.2
    pos = torch.tensor(sorted([(math.pi - th - math.sin(th)), (math.pi - th), (math.pi - th),
                               (math.pi - th + math.sin(th))]), dtype=f64) / (2 * math.pi)
    neg = torch.tensor(sorted([th - math.sin(th), th, th, th + math.sin(th)]), dtype=f64) / (2 * math.pi)
    assert (torch.linalg.eigvalsh(A_pos) - pos).abs().max() < 0.01
    assert (torch.linalg.eigvalsh(A_neg) - neg).abs().max() < 0.01


# ---------------------------------------------------------------------------------------------------------------
# Directions at angle φ


@pytest.mark.parametrize("p", [2, 3, 7])
def test_directions_at_angle_are_unit_and_exact(p):
    g = fl.generator(p, "cpu")
    w_star = 3 * torch.randn(p, generator=g, dtype=f64)
    W = theory.directions_at_angle(w_star, PHIS, 6, seed=1)
    assert W.shape == (4, 6, p)
    torch.testing.assert_close(W.norm(dim=-1), torch.ones(4, 6, dtype=f64))
    for i, phi in enumerate(PHIS):
        torch.testing.assert_close(fl.angle(W[i], w_star), phi.expand(6), rtol=0, atol=1e-7)
        cos = W[i] @ w_star / w_star.norm()
        torch.testing.assert_close(cos, torch.cos(phi).expand(6), rtol=0, atol=1e-14)
    assert theory.directions_at_angle(w_star, 0.5, 3, seed=0).shape == (3, p)
    # the same directions u at every φ: a scalar φ gives the matching slice of the vector result
    torch.testing.assert_close(theory.directions_at_angle(w_star, PHIS[2], 6, seed=1), W[2])


def test_directions_at_angle_p2_uses_both_sides():
    w_star = torch.tensor([0.0, 2.0], dtype=f64)
    W = theory.directions_at_angle(w_star, math.pi / 3, 4)            # no randomness needed for p = 2
    c, s = math.cos(math.pi / 3), math.sin(math.pi / 3)
    expected = torch.tensor([[-s, c], [s, c], [-s, c], [s, c]], dtype=f64)   # ŵ⊥ = +90° rotation of ŵ = (0, 1)
    torch.testing.assert_close(W, expected)


def test_directions_at_angle_p_gt_2_are_uniform_around_w_star():
    w_star = torch.tensor([0.0, 0.0, 1.0, 0.0], dtype=f64)
    W = theory.directions_at_angle(w_star, math.pi / 2, 20_000, seed=3)    # φ = π/2: W = u itself
    assert W[:, 2].abs().max() < 1e-15
    u = W[:, [0, 1, 3]]
    assert u.mean(0).abs().max() < 4 / math.sqrt(20_000)
    assert (u.T @ u / 20_000 - torch.eye(3, dtype=f64) / 3).abs().max() < 4 / math.sqrt(20_000)
    torch.testing.assert_close(theory.directions_at_angle(w_star, 1.0, 5, seed=3),
                               theory.directions_at_angle(w_star, 1.0, 5, seed=3))


# ---------------------------------------------------------------------------------------------------------------
# Monte-Carlo estimators vs Gaussian closed forms (derived in chapters/smoothness.md)


@pytest.mark.parametrize("name", ["gamma", "L", "L_minus"])
def test_mc_estimates_match_gaussian_closed_forms(gauss, name):
    Z, w_star = gauss
    est, closed = getattr(theory, name), getattr(theory, "gaussian_" + name)
    value, se = est(Z, w_star, PHIS, return_se=True)
    assert value.shape == se.shape == (4,) and bool((se > 0).all())
    z = (value - closed(PHIS)) / se
    assert z.abs().max() < 3, (value, closed(PHIS), se)
    assert (se < 0.02).all()                                       # and the error bar is informative
    # return_se=False returns the same value; a scalar φ returns a 0-d tensor
    torch.testing.assert_close(est(Z, w_star, PHIS), value)
    v1, s1 = est(Z, w_star, float(PHIS[1]), return_se=True)
    assert v1.dim() == 0 and s1.dim() == 0
    torch.testing.assert_close(v1, value[1])


def test_mc_beta_matches_gaussian(gauss):
    Z, w_star = gauss
    grid = theory.default_beta_grid(8, dtype=f64)
    value, se = theory.beta(Z, w_star, grid, return_se=True)
    closed = (theory.gaussian_L_minus(grid) / grid).max()           # the same maximum over the same grid
    assert abs(value - closed) < 3 * se, (value, closed, se)
    assert value < theory.GAUSSIAN_BETA + 3 * se
    assert closed <= theory.GAUSSIAN_BETA
    # L_{−w*}(φ) ≤ βφ (Assumption 3.2) at the estimated β, up to noise
    Lm = theory.L_minus(Z, w_star, grid)
    assert bool((Lm <= value * grid + 1e-12).all())


def test_mc_estimates_rotation_invariant_law():
    """Z = R·U with U uniform on the sphere and R ~ U[0, 2] independent: every A-matrix is (E R²/p) × Gaussian
    (derived; not in the paper), so γ, L, L_{−w*} are the Gaussian closed forms times (4/3)/p."""
    n, p = 200_000, 4
    g = fl.generator(17, "cpu")
    U = torch.randn(n, p, generator=g, dtype=f64)
    U = U / U.norm(dim=1, keepdim=True)
    R = 2 * torch.rand(n, 1, generator=g, dtype=f64)
    Z = (R * U).unsqueeze(1)
    w_star = torch.tensor([1.0, 1.0, 0.0, -1.0], dtype=f64)
    factor = (4 / 3) / p
    phis = PHIS[1:3]
    for name in ("gamma", "L", "L_minus"):
        value, se = getattr(theory, name)(Z, w_star, phis, return_se=True, seed=2)
        expected = factor * getattr(theory, "gaussian_" + name)(phis)
        assert ((value - expected).abs() < 3 * se).all(), (name, value, expected, se)
    # L/γ is the same as for the Gaussian
    ratio = theory.L(Z, w_star, math.pi / 4) / theory.gamma(Z, w_star, math.pi / 4)
    assert abs(ratio - theory.gaussian_L(math.pi / 4) / theory.gaussian_gamma(math.pi / 4)) < 0.1


def test_standard_error_shrinks_with_n(gauss):
    Z, w_star = gauss
    _, se_small = theory.gamma(Z[:20_000], w_star, math.pi / 4, return_se=True)
    _, se_big = theory.gamma(Z, w_star, math.pi / 4, return_se=True)
    assert se_big < se_small


# ---------------------------------------------------------------------------------------------------------------
# Gaussian closed forms


def test_gaussian_constants_values_and_monotonicity():
    phis = torch.linspace(0, math.pi, 201, dtype=f64)
    gam, L, Lm = theory.gaussian_gamma(phis), theory.gaussian_L(phis), theory.gaussian_L_minus(phis)
    assert bool((gam[1:] < gam[:-1]).all()) and bool((L[1:] < L[:-1]).all())      # decreasing in φ
    assert bool((Lm[1:] > Lm[:-1]).all())
    assert bool((gam[1:-1] < L[1:-1]).all())                                          # γ = L only at φ ∈ {0, π}
    torch.testing.assert_close(gam[[0, -1]], L[[0, -1]])
    torch.testing.assert_close(gam[-1], torch.tensor(0.0, dtype=f64), rtol=0, atol=1e-15)
    half = phis[phis <= math.pi / 2]
    assert bool((theory.gaussian_L_minus(half) <= theory.GAUSSIAN_BETA * half + 1e-15).all())
    # the closed-form values of chapters/smoothness.md
    assert abs(float(theory.gaussian_gamma(math.pi / 4)) - 0.2625) < 5e-5
    assert abs(float(theory.gaussian_L(math.pi / 2)) - 0.4092) < 5e-5
    assert theory.gaussian_gamma(phis.float()).dtype == torch.float32
    assert theory.gaussian_gamma(1.0).dim() == 0


def _mc_loss_and_gradient(w, w_star, Z):
    """Per-sample loss and gradient terms (for means and standard errors)."""
    k = Z.shape[1]
    pre = Z @ w
    resid = torch.relu(pre).mean(1) - torch.relu(Z @ w_star).mean(1)
    per_loss = 0.5 * resid ** 2
    per_grad = resid[:, None] * ((pre >= 0).to(f64)[..., None] * Z).sum(1) / k
    return per_loss, per_grad


@pytest.mark.parametrize("k", [1, 3])
def test_gaussian_loss_and_gradient_vs_monte_carlo(k):
    n, p = 200_000, 4
    Z = distributions.gaussian(n, k, p, seed=40 + k, dtype=f64)
    w_star = torch.tensor([1.0, -0.5, 0.3, 0.8], dtype=f64)
    for w in (torch.tensor([0.2, 0.4, -0.6, 0.5], dtype=f64), torch.tensor([-1.0, 0.1, 0.0, -0.2], dtype=f64)):
        per_loss, per_grad = _mc_loss_and_gradient(w, w_star, Z)
        torch.testing.assert_close(per_loss.mean(), fl.loss(w, w_star, Z))
        torch.testing.assert_close(per_grad.mean(0), fl.gradient(w, w_star, Z))
        loss_se = per_loss.std() / math.sqrt(n)
        assert abs(per_loss.mean() - theory.gaussian_loss(w, w_star, k)) < 4 * loss_se
        grad_se = per_grad.std(0) / math.sqrt(n)
        assert ((per_grad.mean(0) - theory.gaussian_gradient(w, w_star, k)).abs() < 4 * grad_se).all()


@pytest.mark.parametrize("k", [1, 2, 5])
def test_gaussian_gradient_is_the_gradient_of_gaussian_loss(k):
    g = fl.generator(50 + k, "cpu")
    w_star = torch.randn(6, generator=g, dtype=f64)
    W = torch.randn(5, 6, generator=g, dtype=f64).requires_grad_()
    theory.gaussian_loss(W, w_star, k).sum().backward()
    closed = theory.gaussian_gradient(W.detach(), w_star, k)
    assert closed.shape == (5, 6)
    torch.testing.assert_close(W.grad, closed, rtol=0, atol=1e-10)
    torch.testing.assert_close(theory.gaussian_gradient(W.detach()[2], w_star, k), closed[2])
    # zero loss and gradient at the teacher
    assert abs(float(theory.gaussian_loss(w_star, w_star, k))) < 1e-14
    assert theory.gaussian_gradient(w_star, w_star, k).abs().max() < 1e-14


def test_gaussian_loss_at_zero_and_theorem_3_1_condition():
    """ℓ(0) = ‖w*‖²/(4k) + (k−1)‖w*‖²/(4πk); for k = 1, ℓ(w) < ℓ(0) ⟺ ‖w‖ < (2‖w*‖/π)(sin θ + (π − θ)cos θ)."""
    w_star = torch.tensor([0.0, 2.0, 0.0], dtype=f64)
    for k in (1, 4):
        expected = 4 / (4 * k) + (k - 1) * 4 / (4 * math.pi * k)
        assert abs(float(theory.gaussian_loss(torch.zeros(3, dtype=f64), w_star, k)) - expected) < 1e-14
    g = fl.generator(8, "cpu")
    W = 2 * torch.randn(500, 3, generator=g, dtype=f64)
    theta = fl.angle(W, w_star)
    radius = 2 * 2 / math.pi * (torch.sin(theta) + (math.pi - theta) * torch.cos(theta))
    below = theory.gaussian_loss(W, w_star) < theory.gaussian_loss(torch.zeros(3, dtype=f64), w_star)
    assert torch.equal(below, W.norm(dim=1) < radius)


# ---------------------------------------------------------------------------------------------------------------
# Fig. 3(a) law (defined in chapters/smoothness.md): spiky vs smooth one-neuron inputs in the plane


def _quadrature_fig3a(sigma, phi, m=200_001):
    """Exact (γ, L, L_{−w*}) of the p = 2 angular mixture at angle φ by quadrature over the patch angle α.

    For w at angle +φ, S(w, w*) is α ∈ [φ − π/2, π/2] (only the component around w*) and S(w, −w*) is
    α ∈ [π/2, π/2 + φ] (the component around −w*, density f(α − π)); f is ½·TN(0, σ²; [−π/2, π/2]).
    """
    def tn_half(a):
        mass = math.erf(math.pi / 2 / sigma / math.sqrt(2))
        return 0.5 * torch.exp(-0.5 * (a / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi) * mass)

    def moment(lo, hi, shift):
        a = torch.linspace(lo, hi, m, dtype=f64)
        u = torch.stack([torch.cos(a), torch.sin(a)], dim=1)
        integrand = u[:, :, None] * u[:, None, :] * tn_half(a - shift)[:, None, None]
        return torch.trapezoid(integrand, a, dim=0)

    ev_pos = torch.linalg.eigvalsh(moment(phi - math.pi / 2, math.pi / 2, 0.0))
    ev_neg = torch.linalg.eigvalsh(moment(math.pi / 2, math.pi / 2 + phi, math.pi))
    return float(ev_pos[0]), float(ev_pos[1]), float(ev_neg[1])


def test_fig3a_law_smoothness_and_beta():
    """L/γ at φ = π/4 falls as σ grows (larger σ is smoother), L_{−w*}(π/4)/(π/4) grows with σ; MC agrees with
    quadrature within 3 se and loosely with an earlier table of this law (11.6, 5.1 for σ = 0.3, 0.5; 0.003, 0.036).

    That table's σ = 1 entries (L/γ 2.2, L_{−w*}/φ 0.126) disagree with quadrature (2.49, 0.1085), which this MC
    reproduces; they are not asserted. β = sup over φ ∈ (0, π/2] is *not* increasing in σ: it is attained at
    φ = π/2 for spiky laws, where the wedge S(w, −w*) reaches the mode at −w*.
    """
    phi = math.pi / 4
    w_star = torch.tensor([1.0, 0.0], dtype=f64)
    ratios, growth, betas = [], [], []
    for sigma in (0.3, 0.5, 1.0):
        Z = distributions.angular_mixture(100_000, sigma, seed=60, dtype=f64)
        gam, gse = theory.gamma(Z, w_star, phi, return_se=True)
        L, Lse = theory.L(Z, w_star, phi, return_se=True)
        Lm, Lmse = theory.L_minus(Z, w_star, phi, return_se=True)
        q_gam, q_L, q_Lm = _quadrature_fig3a(sigma, phi)
        assert abs(gam - q_gam) < 3 * gse and abs(L - q_L) < 3 * Lse and abs(Lm - q_Lm) < 3 * Lmse + 1e-9
        ratios.append(float(L / gam))
        growth.append(float(Lm / phi))
        betas.append(float(theory.beta(Z, w_star)))
    assert ratios[0] > ratios[1] > ratios[2], ratios
    assert growth[0] < growth[1] < growth[2], growth
    assert abs(ratios[0] / 11.6 - 1) < 0.1 and abs(ratios[1] / 5.1 - 1) < 0.1
    assert abs(growth[0] - 0.003) < 0.002 and abs(growth[1] - 0.036) < 0.005
    q_beta = [max(_quadrature_fig3a(s, math.pi / 2, 20_001)[2] / (math.pi / 2), 0) for s in (0.3, 1.0)]
    assert betas[0] > betas[2] and q_beta[0] > q_beta[1]              # 0.154 vs 0.134


# ---------------------------------------------------------------------------------------------------------------
# Theorem 3.2 quantities


def test_phi_t_bounds_the_angle():
    g = fl.generator(9, "cpu")
    w_star = torch.randn(5, generator=g, dtype=f64)
    d = torch.randn(200, 5, generator=g, dtype=f64)
    W = w_star + d / d.norm(dim=1, keepdim=True) * w_star.norm() * torch.rand(200, 1, generator=g, dtype=f64) * 0.99
    phis = theory.phi_t(W, w_star)
    assert phis.shape == (200,)
    torch.testing.assert_close(phis, torch.arcsin((W - w_star).norm(dim=1) / w_star.norm()))
    assert bool((fl.angle(W, w_star) <= phis + 1e-12).all())                   # Theorem 3.2: θ ≤ φ_t
    assert float(theory.phi_t(w_star, w_star)) == 0.0
    with pytest.raises(ValueError, match="w must satisfy"):
        theory.phi_t(torch.zeros(5, dtype=f64), w_star)
    with pytest.raises(ValueError, match="w must satisfy"):
        theory.phi_t(-w_star, w_star)


def test_step_cap_contraction_and_iterations_formulas():
    assert theory.step_cap(0.3, 0.5, 0.1) == pytest.approx(0.3 / (2 * (0.5 + 0.4) ** 2), rel=1e-15)
    assert theory.contraction_bound(0.1, 0.3) == pytest.approx(1 - 0.015, rel=1e-15)
    assert theory.iterations_bound(0.2, 0.5, 0.1, 1e-3) == pytest.approx(0.6 ** 2 / 0.04 * math.log(1e3), rel=1e-14)
    assert isinstance(theory.step_cap(0.3, 0.5, 0.1), float)
    # tensors broadcast and stay tensors
    gam = torch.tensor([0.1, 0.2, 0.3], dtype=f64)
    caps = theory.step_cap(gam, torch.tensor(0.5, dtype=f64), 0.1)
    torch.testing.assert_close(caps, gam / (2 * 0.9 ** 2))
    # scaling: halving γ doubles the iterations' square root; ln(1/ε) is linear in the number of digits
    assert theory.iterations_bound(0.1, 0.5, 0.1, 1e-3) == pytest.approx(4 * theory.iterations_bound(0.2, 0.5, 0.1, 1e-3))
    assert theory.iterations_bound(0.2, 0.5, 0.1, 1e-6) == pytest.approx(2 * theory.iterations_bound(0.2, 0.5, 0.1, 1e-3))


def test_gaussian_step_cap_values_and_monotonicity():
    """From the closed forms (chapters/rate.md): for Gaussian input the cap is 0.0795, 0.0423, 0.0160 at φ = 0,
    π/4, π/2 and decreasing."""
    phis = torch.tensor([0.0, math.pi / 4, math.pi / 2], dtype=f64)
    caps = theory.step_cap(theory.gaussian_gamma(phis), theory.gaussian_L(phis), theory.GAUSSIAN_BETA)
    torch.testing.assert_close(caps, torch.tensor([0.0795, 0.0423, 0.0160], dtype=f64), rtol=0, atol=6e-5)
    grid = torch.linspace(0, math.pi / 2, 100, dtype=f64)
    fine = theory.step_cap(theory.gaussian_gamma(grid), theory.gaussian_L(grid), theory.GAUSSIAN_BETA)
    assert bool((fine[1:] < fine[:-1]).all())


def test_theorem_3_2_contraction_along_gradient_descent():
    """GD on the Gaussian population loss with η = cap(φ₀): ‖w_{t+1} − w*‖² ≤ (1 − ηγ(φ_t)/2)‖w_t − w*‖²."""
    g = fl.generator(10, "cpu")
    p = 6
    w_star = torch.randn(p, generator=g, dtype=f64)
    d = torch.randn(p, generator=g, dtype=f64)
    w = w_star + 0.95 * w_star.norm() * d / d.norm()
    phi0 = float(theory.phi_t(w, w_star))
    eta = theory.step_cap(float(theory.gaussian_gamma(phi0)), float(theory.gaussian_L(phi0)), theory.GAUSSIAN_BETA)
    for _ in range(200):
        r2 = (w - w_star).norm() ** 2
        bound = theory.contraction_bound(eta, float(theory.gaussian_gamma(theory.phi_t(w, w_star))))
        w = w - eta * theory.gaussian_gradient(w, w_star)
        assert (w - w_star).norm() ** 2 <= bound * r2 * (1 + 1e-12)
    assert (w - w_star).norm() < 0.9 * w_star.norm()


# ---------------------------------------------------------------------------------------------------------------
# Input checks


@pytest.fixture(scope="module")
def small():
    Z = distributions.gaussian(100, 1, 3, seed=0, dtype=f64)
    return Z, torch.tensor([1.0, 0.0, 0.0], dtype=f64)


BAD = [
    (lambda Z, ws: theory.gamma(Z, ws, -0.1), ValueError, "phi must lie in"),
    (lambda Z, ws: theory.L(Z, ws, 3.5), ValueError, "phi must lie in"),
    (lambda Z, ws: theory.L_minus(Z, ws, torch.tensor([0.1, 4.0], dtype=f64)), ValueError, "phi must lie in"),
    (lambda Z, ws: theory.gamma(Z, ws, float("nan")), ValueError, "phi contains NaN"),
    (lambda Z, ws: theory.gamma(Z, ws, torch.empty(0, dtype=f64)), ValueError, "phi must not be empty"),
    (lambda Z, ws: theory.gamma(Z, ws, torch.ones(2, 2, dtype=f64)), ValueError, "phi must have 0 or 1"),
    (lambda Z, ws: theory.gamma(Z, ws, True), TypeError, "phi must be a number"),
    (lambda Z, ws: theory.gaussian_gamma(-1.0), ValueError, "phi must lie in"),
    (lambda Z, ws: theory.gaussian_L(4.0), ValueError, "phi must lie in"),
    (lambda Z, ws: theory.gaussian_L_minus(float("inf")), ValueError, "phi contains NaN"),
    (lambda Z, ws: theory.directions_at_angle(ws, 3.2, 2, seed=0), ValueError, "phi must lie in"),
    (lambda Z, ws: theory.beta(Z, ws, [0.0, 0.5]), ValueError, r"phis must lie in \(0"),
    (lambda Z, ws: theory.beta(Z, ws, [0.5, 2.0]), ValueError, r"phis must lie in \(0"),
    (lambda Z, ws: theory.gamma(Z, torch.zeros(3, dtype=f64), 0.5), ValueError, "w_star must be non-zero"),
    (lambda Z, ws: theory.A_matrices(ws, torch.zeros(3, dtype=f64), Z), ValueError, "w_star must be non-zero"),
    (lambda Z, ws: theory.beta(Z, torch.zeros(3, dtype=f64)), ValueError, "w_star must be non-zero"),
    (lambda Z, ws: theory.directions_at_angle(torch.zeros(3), 0.5, 2, seed=0), ValueError, "w_star must be non-zero"),
    (lambda Z, ws: theory.gaussian_loss(ws, torch.zeros(3, dtype=f64)), ValueError, "w_star must be non-zero"),
    (lambda Z, ws: theory.gamma(Z, ws[:2], 0.5), ValueError, "w_star must have shape"),
    (lambda Z, ws: theory.gamma(Z[:0], ws, 0.5), ValueError, "Z must not be empty"),
    (lambda Z, ws: theory.A_matrices(ws, ws, Z[:0]), ValueError, "Z must not be empty"),
    (lambda Z, ws: theory.gamma(Z.reshape(50, 2, 3), ws, 0.5), ValueError, "Z must hold one patch"),
    (lambda Z, ws: theory.A_matrices(ws, ws, Z.reshape(25, 4, 3)), ValueError, "Z must hold one patch"),
    (lambda Z, ws: theory.L(Z[:, 0], ws, 0.5), ValueError, "Z must have 3 dimensions"),
    (lambda Z, ws: theory.gamma(Z.clone().fill_(float("nan")), ws, 0.5), ValueError, "Z contains NaN"),
    (lambda Z, ws: theory.A_matrices(ws * float("inf"), ws, Z), ValueError, "w contains NaN"),
    (lambda Z, ws: theory.A_matrices(torch.ones(4, dtype=f64), ws, Z), ValueError, "w must have size p=3"),
    (lambda Z, ws: theory.A_matrices(ws.float(), ws, Z), TypeError, "dtype"),
    (lambda Z, ws: theory.gamma(Z, ws, 0.5, n_directions=0), ValueError, "n_directions must be a positive"),
    (lambda Z, ws: theory.gamma(Z, ws, 0.5, seed=-1), ValueError, "seed must be a non-negative"),
    (lambda Z, ws: theory.gamma(Z, ws, 0.5, return_se=True, n_batches=1), ValueError, "n_batches must be at least 2"),
    (lambda Z, ws: theory.gamma(Z[:15], ws, 0.5, return_se=True), ValueError, "needs at least 20"),
    (lambda Z, ws: theory.gamma(Z, ws, 0.5, return_se="yes"), TypeError, "return_se must be True or False"),
    (lambda Z, ws: theory.directions_at_angle(ws, 0.5, 0, seed=0), ValueError, "m must be a positive"),
    (lambda Z, ws: theory.directions_at_angle(ws, 0.5, 2), ValueError, "pass a seed"),
    (lambda Z, ws: theory.directions_at_angle(torch.ones(1), 0.5, 2), ValueError, "w_star must have at least 2"),
    (lambda Z, ws: theory.gaussian_gradient(torch.zeros(3, dtype=f64), ws), ValueError, "w must be non-zero"),
    (lambda Z, ws: theory.gaussian_loss(ws, ws, k=0), ValueError, "k must be a positive"),
    (lambda Z, ws: theory.gaussian_gradient(torch.ones(2, 4, dtype=f64), ws), ValueError, "w must have size p=3"),
    (lambda Z, ws: theory.gaussian_loss(ws * float("nan"), ws), ValueError, "w contains NaN"),
    (lambda Z, ws: theory.phi_t(2 * ws, torch.zeros(3, dtype=f64)), ValueError, "w_star must be non-zero"),
    (lambda Z, ws: theory.phi_t(3 * ws, ws), ValueError, "w must satisfy"),
    (lambda Z, ws: theory.step_cap(-0.1, 0.5, 0.1), ValueError, "gamma must be ≥ 0"),
    (lambda Z, ws: theory.step_cap(0.1, float("nan"), 0.1), ValueError, "L contains NaN"),
    (lambda Z, ws: theory.step_cap(0.1, 0.0, 0.0), ValueError, "L \\+ 4·beta must be positive"),
    (lambda Z, ws: theory.step_cap(0.1, 0.5, -1.0), ValueError, "beta must be ≥ 0"),
    (lambda Z, ws: theory.contraction_bound(-0.1, 0.5), ValueError, "eta must be ≥ 0"),
    (lambda Z, ws: theory.iterations_bound(0.0, 0.5, 0.1, 0.01), ValueError, "gamma must be > 0"),
    (lambda Z, ws: theory.iterations_bound(0.1, 0.5, 0.1, 1.0), ValueError, "eps must lie in"),
    (lambda Z, ws: theory.iterations_bound(0.1, 0.5, 0.1, 0.0), ValueError, "eps must be > 0"),
    (lambda Z, ws: theory.step_cap(True, 0.5, 0.1), TypeError, "gamma must be a real number"),
    (lambda Z, ws: theory.lemma_a1_violations(ws, ws, Z.reshape(50, 2, 3)), ValueError, "Z must hold one patch"),
    (lambda Z, ws: theory.lemma_a1_violations(ws, ws, Z, tol=-1.0), ValueError, "tol must be a positive"),
]


@pytest.mark.parametrize("call,exc,match", BAD)
def test_bad_input_names_the_parameter(small, call, exc, match):
    Z, w_star = small
    with pytest.raises(exc, match=match):
        call(Z, w_star)


def test_edge_angles_are_finite(small):
    """φ = 0 and φ = π are allowed: no NaN (γ(π) = L(π) = 0 for any law, since A_{−w*,w*} = 0 a.s.)."""
    Z, w_star = small
    for est in (theory.gamma, theory.L, theory.L_minus):
        vals = est(Z, w_star, [0.0, math.pi])
        assert bool(torch.isfinite(vals).all())
    torch.testing.assert_close(theory.L(Z, w_star, math.pi), torch.tensor(0.0, dtype=f64))
    assert float(theory.L_minus(Z, w_star, 0.0)) == 0.0
    # a float32 π (slightly above π in float64) is accepted
    assert theory.gaussian_gamma(torch.tensor(math.pi, dtype=torch.float32)).abs() < 1e-6


# ---------------------------------------------------------------------------------------------------------------
# Theorem 4.2 quantities (chapters/sgd.md)


def test_conv_phi_star_on_a_linear_gamma_and_the_gaussian_closed_forms():
    """φ* = max{φ : γ(φ) ≥ 6 L_cross}: exact where γ is linear between grid angles; the grid's end where γ ≥ 6 L_cross
    everywhere (one neuron, L_cross = 0); NaN for k = 4 independent Gaussian patches, where γ < 6 L_cross at every
    angle (chapters/diagnose.md)."""
    grid = torch.linspace(0.05, math.pi / 2, 40, dtype=f64)
    gam = 0.3 - 0.15 * grid
    assert theory.conv_phi_star(grid, gam, 0.02) == pytest.approx((0.3 - 0.12) / 0.15, rel=1e-12)
    assert theory.conv_phi_star(grid, gam, 0.0) == pytest.approx(math.pi / 2, rel=1e-15)
    assert theory.conv_phi_star(grid, gam, 0.3 / 6) != theory.conv_phi_star(grid, gam, 0.3 / 6)   # NaN
    # a γ that dips below 6 L_cross and comes back: the largest angle counts
    bumpy = torch.where((grid > 0.5) & (grid < 0.7), torch.zeros_like(grid), gam)
    assert theory.conv_phi_star(grid, bumpy, 0.02) == pytest.approx((0.3 - 0.12) / 0.15, rel=1e-12)
    cross_grid = theory.default_cross_grid(dtype=f64)
    for k, exists in [(1, True), (4, False)]:
        lx = float((theory.gaussian_conv_constants(cross_grid, k)["cross_sum"] / cross_grid).max())
        phi = theory.conv_phi_star(grid, theory.gaussian_conv_constants(grid, k)["gamma"], lx)
        assert (phi == pytest.approx(math.pi / 2)) if exists else math.isnan(phi)
    with pytest.raises(ValueError, match="phis must be increasing"):
        theory.conv_phi_star(grid.flip(0), gam.flip(0), 0.02)
    with pytest.raises(ValueError, match="phis must lie in"):
        theory.conv_phi_star([0.5, 2.0], [0.2, 0.1], 0.02)
    with pytest.raises(ValueError, match="one value per angle"):
        theory.conv_phi_star(grid, gam[:-1], 0.02)


def test_sgd_step_and_iterations_make_the_markov_bound_delta():
    """With Theorem 4.2's η and T, the recursion m_{t+1} = (1 − 2ηκ) m_t + η²B² from m_0 = r₀² (the bound on
    E‖w_t − w*‖², iterated here step by step) ends at most δε²‖w*‖², and T is the smallest count that does so
    for the transient; sgd_failure_bound is that recursion's closed-form bound over ε²‖w*‖²."""
    gam, lx, B, r0, eps, delta, ws = 0.08, 0.004, 0.8, 0.4, 0.2, 0.1, 1.5
    kappa = gam - 6 * lx
    eta = theory.sgd_step(gam, lx, B, eps, delta, ws)
    assert eta == pytest.approx(delta * eps ** 2 * kappa * ws ** 2 / B ** 2, rel=1e-14)
    T = theory.sgd_iterations(gam, lx, B, r0, eps, delta, ws)
    assert isinstance(T, int)
    a = 2 * eta * kappa
    assert (1 - a) ** T * r0 ** 2 <= delta * (eps * ws) ** 2 / 2 < (1 - a) ** (T - 1) * r0 ** 2
    assert T == pytest.approx(B ** 2 * math.log(2 * r0 ** 2 / (delta * (eps * ws) ** 2))
                              / (2 * delta * eps ** 2 * kappa ** 2 * ws ** 2), rel=1e-3)
    m = r0 ** 2
    for _ in range(T):
        m = (1 - a) * m + eta ** 2 * B ** 2
    bound = theory.sgd_failure_bound(eta, T, gam, lx, B, r0, eps, ws)
    assert m / (eps * ws) ** 2 <= bound <= delta
    assert bound == pytest.approx(delta, rel=0.05)
    # scale-free: w*, r₀ and B scaled together leave η and T unchanged
    assert theory.sgd_step(gam, lx, 3 * B, eps, delta, 3 * ws) == pytest.approx(eta, rel=1e-14)
    assert theory.sgd_iterations(gam, lx, 3 * B, 3 * r0, eps, delta, 3 * ws) == T
    # η ∝ δε²; a start already within reach needs no step
    assert theory.sgd_step(gam, lx, B, eps / 2, delta / 3, ws) == pytest.approx(eta / 12, rel=1e-14)
    assert theory.sgd_iterations(gam, lx, B, 0.01, eps, delta, ws) == 0
    steps = theory.sgd_iterations(torch.tensor([gam, 0.1], dtype=f64), lx, B, r0, eps, delta, ws)
    assert steps.dtype == torch.int64 and int(steps[0]) == T and int(steps[1]) < T


def test_sgd_failure_bound_holds_for_a_simulated_stochastic_gradient():
    """An independent check of the proof's two steps: SGD on ℓ(u) = κ‖u‖²/2 in the plane with the stochastic gradient
    g = κu + s·ξ (ξ a random unit vector, so E g = ∇ℓ and ‖g‖ ≤ κr₀ + s = B while ‖u‖ ≤ r₀): with Theorem 4.2's η
    and T, the fraction of 4000 runs farther than ε at T stays below δ (and below the Markov bound)."""
    g = fl.generator(23, "cpu")
    kappa, s, r0, eps, delta = 0.5, 0.5, 1.0, 0.3, 0.2
    B = kappa * r0 + s
    eta = theory.sgd_step(kappa, 0.0, B, eps, delta)
    T = theory.sgd_iterations(kappa, 0.0, B, r0, eps, delta)
    u = torch.tensor([r0, 0.0], dtype=f64).repeat(4000, 1)
    for _ in range(T):
        xi = torch.randn(4000, 2, generator=g, dtype=f64)
        u = u - eta * (kappa * u + s * xi / xi.norm(dim=1, keepdim=True))
    assert bool((u.norm(dim=1) <= r0).all())                         # the runs stayed where ‖g‖ ≤ B
    failed = float((u.norm(dim=1) > eps).double().mean())
    assert failed <= theory.sgd_failure_bound(eta, T, kappa, 0.0, B, r0, eps) <= delta
    assert float((u.norm(dim=1) ** 2).mean()) <= delta * eps ** 2


@pytest.mark.parametrize("call,match", [
    (lambda: theory.sgd_step(0.05, 0.01, 1.0, 0.1, 0.1), "gamma must exceed 6·L_cross"),
    (lambda: theory.sgd_step(0.2, 0.01, 0.0, 0.1, 0.1), "B must be > 0"),
    (lambda: theory.sgd_iterations(0.2, 0.01, 1.0, 0.5, 0.1, 0.0), "delta must be > 0"),
    (lambda: theory.sgd_failure_bound(10.0, 5, 0.2, 0.01, 1.0, 0.5, 0.1), "eta is too large"),
])
def test_theorem_4_2_formulas_name_the_bad_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
