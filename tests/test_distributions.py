"""filterlib.distributions: shapes, moments, seeding, errors."""
import math

import pytest
import torch

import filterlib as fl
from filterlib import distributions, theory


def test_gaussian_shape_dtype_and_moments():
    Z = distributions.gaussian(20_000, 3, 4, seed=0, dtype=torch.float64)
    assert Z.shape == (20_000, 3, 4) and Z.dtype == torch.float64
    flat = Z.reshape(-1, 4)
    n = flat.shape[0]
    assert flat.mean(0).abs().max() < 4 / n ** 0.5            # mean 0 within 4 standard errors
    cov = flat.T @ flat / n
    assert (cov - torch.eye(4, dtype=torch.float64)).abs().max() < 4 * (2 / n) ** 0.5


def test_gaussian_is_reproducible():
    assert torch.equal(distributions.gaussian(10, 2, 3, seed=5), distributions.gaussian(10, 2, 3, seed=5))
    assert not torch.equal(distributions.gaussian(10, 2, 3, seed=5), distributions.gaussian(10, 2, 3, seed=6))
    g1, g2 = fl.generator(1), fl.generator(1)
    assert torch.equal(distributions.gaussian(4, 1, 2, generator=g1), distributions.gaussian(4, 1, 2, generator=g2))


@pytest.mark.parametrize("args,match", [((0, 1, 2), "n must be a positive integer"),
                                        ((5, -1, 2), "k must be a positive integer"),
                                        ((5, 1, 2.5), "p must be a positive integer")])
def test_gaussian_bad_sizes(args, match):
    with pytest.raises((ValueError, TypeError), match=match):
        distributions.gaussian(*args, seed=0)


def test_gaussian_needs_seed_or_generator():
    with pytest.raises(ValueError, match="pass a seed"):
        distributions.gaussian(3, 1, 2)


# ---------------------------------------------------------------------------------------------------------------
# Samplers of Parts I–II: angular_mixture, uniform_cube, laplace, degenerate_lines, close_patches

f64 = torch.float64


def _tn_std(std, half_width):
    """Standard deviation of TN(0, std²; [−h, h]): std·sqrt(1 − 2aφ(a)/(2Φ(a) − 1)), a = h/std."""
    a = half_width / std
    pdf = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
    mass = math.erf(a / math.sqrt(2))                         # 2Φ(a) − 1
    return std * math.sqrt(1 - 2 * a * pdf / mass)


def _std_and_se(x):
    """Sample std of x (mean known to be 0) and its delta-method standard error."""
    n = x.numel()
    m2, m4 = (x ** 2).mean(), (x ** 4).mean()
    sd = m2.sqrt()
    return sd.item(), (((m4 - m2 ** 2) / n).sqrt() / (2 * sd)).item()


SAMPLERS = {
    "angular_mixture": lambda n, **kw: distributions.angular_mixture(n, 0.5, **kw),
    "angular_mixture_p5": lambda n, **kw: distributions.angular_mixture(n, 0.5, p=5, **kw),
    "uniform_cube": lambda n, **kw: distributions.uniform_cube(n, 3, 4, **kw),
    "laplace": lambda n, **kw: distributions.laplace(n, 3, 4, **kw),
    "degenerate_lines": lambda n, **kw: distributions.degenerate_lines(n, [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]], **kw),
    "close_patches": lambda n, **kw: distributions.close_patches(n, 5, 0.1, **kw),
}
SHAPES = {"angular_mixture": (1, 2), "angular_mixture_p5": (1, 5), "uniform_cube": (3, 4), "laplace": (3, 4),
          "degenerate_lines": (1, 3), "close_patches": (5, 2)}


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_new_samplers_shape_dtype_and_seeding(name):
    draw = SAMPLERS[name]
    Z = draw(50, seed=3, dtype=f64)
    assert Z.shape == (50, *SHAPES[name]) and Z.dtype == f64 and bool(torch.isfinite(Z).all())
    assert draw(7, seed=3).dtype == fl.default_dtype()
    assert torch.equal(Z, draw(50, seed=3, dtype=f64))
    assert not torch.equal(Z, draw(50, seed=4, dtype=f64))
    assert torch.equal(draw(9, generator=fl.generator(2, "cpu")), draw(9, generator=fl.generator(2, "cpu")))
    g = fl.generator(2, "cpu")
    first, second = draw(9, generator=g), draw(9, generator=g)   # a generator advances between calls
    assert not torch.equal(first, second)


@pytest.mark.parametrize("name", ["angular_mixture", "angular_mixture_p5", "close_patches"])
def test_unit_norm_patches(name):
    Z = SAMPLERS[name](2000, seed=0, dtype=f64)
    torch.testing.assert_close(Z.norm(dim=-1), torch.ones(Z.shape[:2], dtype=f64), rtol=0, atol=1e-12)


def test_uniform_cube_support_and_moments():
    x = distributions.uniform_cube(50_000, 2, 3, seed=1, dtype=f64).reshape(-1)
    n = x.numel()
    assert x.min() >= -1 and x.max() <= 1
    assert abs(x.mean().item()) < 4 * math.sqrt(1 / 3 / n)
    # E x² = 1/3, Var(x²) = E x⁴ − 1/9 = 1/5 − 1/9
    assert abs((x ** 2).mean().item() - 1 / 3) < 4 * math.sqrt((1 / 5 - 1 / 9) / n)
    # the entries are independent across coordinates: empirical correlation ≈ 0
    X = x.reshape(-1, 3)
    corr = (X[:, 0] * X[:, 1]).mean().item() / (1 / 3)
    assert abs(corr) < 4 / math.sqrt(X.shape[0])


def test_laplace_moments_and_tail():
    x = distributions.laplace(50_000, 2, 3, seed=2, dtype=f64).reshape(-1)
    n = x.numel()
    assert abs(x.mean().item()) < 4 * math.sqrt(2 / n)
    # E x² = 2 and Var(x²) = E x⁴ − 4 = 24 − 4
    assert abs((x ** 2).mean().item() - 2) < 4 * math.sqrt(20 / n)
    # E|x| = 1 and the tail P(|x| > t) = e^{−t}
    assert abs(x.abs().mean().item() - 1) < 4 * math.sqrt(1 / n)
    for t in (0.5, 2.0, 4.0):
        q = math.exp(-t)
        assert abs((x.abs() > t).double().mean().item() - q) < 4 * math.sqrt(q * (1 - q) / n)


def _folded_angle(Z, w_hat):
    """Signed angle of a 2-D unit patch to the nearer of ±ŵ, in (−π/2, π/2): atan(Z·ŵ⊥ / Z·ŵ)."""
    perp = torch.stack([-w_hat[1], w_hat[0]])
    return torch.atan((Z[:, 0] @ perp) / (Z[:, 0] @ w_hat))


@pytest.mark.parametrize("sigma", [0.3, 1.0, 3.0])
def test_angular_mixture_angles_are_a_truncated_normal_mixture(sigma):
    n = 100_000
    w_star = torch.tensor([3.0, 4.0], dtype=f64)
    w_hat = w_star / w_star.norm()
    Z = distributions.angular_mixture(n, sigma, w_star=w_star, seed=11, dtype=f64)
    # half the mass lies within π/2 of w_star (the component around w_star), half around −w_star
    front = (Z[:, 0] @ w_hat >= 0).double().mean().item()
    assert abs(front - 0.5) < 4 * 0.5 / math.sqrt(n)
    # the folded angle is TN(0, σ²; [−π/2, π/2]) in both components: symmetric, with the truncated-normal std
    a = _folded_angle(Z, w_hat)
    assert a.abs().max() <= math.pi / 2
    assert abs(a.mean().item()) < 4 * _tn_std(sigma, math.pi / 2) / math.sqrt(n)
    sd, se = _std_and_se(a)
    assert abs(sd - _tn_std(sigma, math.pi / 2)) < 4 * se, (sd, _tn_std(sigma, math.pi / 2), se)
    # exact truncation, not clipping: no atom at the ends ±π/2
    assert (a.abs() > math.pi / 2 - 1e-6).sum() < 5


def test_angular_mixture_approaches_uniform_half_circles():
    """As σ grows the folded angle tends to U(−π/2, π/2): std → π/√12 and a flat histogram."""
    n = 100_000
    a = _folded_angle(distributions.angular_mixture(n, 50.0, seed=5, dtype=f64), torch.tensor([1.0, 0.0], dtype=f64))
    sd, se = _std_and_se(a)
    assert abs(sd - math.pi / math.sqrt(12)) < 4 * se + 1e-3     # TN std at σ = 50 is within 2e-4 of uniform
    counts = torch.histc(a, bins=8, min=-math.pi / 2, max=math.pi / 2) / n
    assert (counts - 1 / 8).abs().max() < 4 * math.sqrt(1 / 8 * 7 / 8 / n)
    # …whereas a spiky σ is far from flat
    e1 = torch.tensor([1.0, 0.0], dtype=f64)
    a_spiky = _folded_angle(distributions.angular_mixture(n, 0.3, seed=5, dtype=f64), e1)
    assert _std_and_se(a_spiky)[0] < 0.6 * sd


def test_angular_mixture_rotates_with_w_star():
    """Same seed, another teacher direction: the same angles, measured from the new ŵ (p = 2)."""
    Z1 = distributions.angular_mixture(500, 0.7, seed=9, dtype=f64)
    w_star = torch.tensor([-1.0, 2.0], dtype=f64)
    Z2 = distributions.angular_mixture(500, 0.7, w_star=w_star, seed=9, dtype=f64)
    w_hat = w_star / w_star.norm()
    rot = torch.stack([w_hat, torch.stack([-w_hat[1], w_hat[0]])], dim=1)   # columns ŵ, ŵ⊥: maps e1 → ŵ
    torch.testing.assert_close(Z2[:, 0], Z1[:, 0] @ rot.T, rtol=0, atol=1e-12)


def test_angular_mixture_high_dimension():
    """p > 2: the angle to w_star follows the same law, the orthogonal part is uniform on the complement sphere."""
    n, p = 60_000, 5
    Z = distributions.angular_mixture(n, 1.0, p=p, seed=4, dtype=f64)[:, 0]
    cos = Z[:, 0]
    folded = torch.atan(Z[:, 1:].norm(dim=1) / cos.abs())                    # |folded angle| in [0, π/2)
    sd, se = _std_and_se(folded)
    assert abs(sd - _tn_std(1.0, math.pi / 2)) < 4 * se
    v = Z[:, 1:] / Z[:, 1:].norm(dim=1, keepdim=True)
    assert v.mean(0).abs().max() < 4 / math.sqrt(n)
    second = v.T @ v / n
    assert (second - torch.eye(p - 1, dtype=f64) / (p - 1)).abs().max() < 4 * math.sqrt(1 / n)
    # w_star given fixes p; a mismatch names w_star
    assert distributions.angular_mixture(3, 1.0, w_star=torch.ones(4), seed=0).shape == (3, 1, 4)
    with pytest.raises(ValueError, match="w_star must have shape"):
        distributions.angular_mixture(3, 1.0, p=3, w_star=torch.ones(4), seed=0)


@pytest.mark.parametrize("sigma2", [0.01, 0.1, 1.0, 10.0])
def test_close_patches_angles_to_the_base(sigma2):
    """The base patch is angular_mixture(n, base_sigma) drawn first from the same seed; each patch's angle to it
    is TN(0, σ²; [−π, π)): inside the truncation, centred, with the truncated-normal variance."""
    n, k = 20_000, 5
    Z = distributions.close_patches(n, k, sigma2, seed=8, dtype=f64)
    base = distributions.angular_mixture(n, 1.0, seed=8, dtype=f64)               # (n, 1, 2)
    cross = base[..., 0] * Z[..., 1] - base[..., 1] * Z[..., 0]
    dot = (base * Z).sum(-1)
    delta = torch.atan2(cross, dot).reshape(-1)                                   # (−π, π]
    assert delta.abs().max() <= math.pi
    expected = _tn_std(math.sqrt(sigma2), math.pi)
    assert abs(delta.mean().item()) < 4 * expected / math.sqrt(delta.numel())
    sd, se = _std_and_se(delta)
    assert abs(sd - expected) < 4 * se, (sd, expected, se)


def test_close_patches_get_closer_as_sigma2_shrinks():
    spreads = []
    for sigma2 in (10.0, 1.0, 0.1, 0.01):
        Z = distributions.close_patches(5000, 5, sigma2, seed=1, dtype=f64)
        mean_patch = Z.mean(dim=1)
        spreads.append(1 - mean_patch.norm(dim=-1).mean().item())       # 0 when all patches coincide
    assert all(a > b for a, b in zip(spreads, spreads[1:])), spreads
    assert spreads[-1] < 0.01


def test_degenerate_lines_support_and_weights():
    d = torch.tensor([[1.0, 0.0, 0.0], [1.0, 2.0, 0.0], [0.0, 1.0, -1.0]], dtype=f64)
    n = 30_000
    Z = distributions.degenerate_lines(n, d, seed=6, dtype=f64)[:, 0]
    # every sample lies on one of the lines: Z = s·d_J exactly
    coef = Z @ d.T / (d * d).sum(1)                                        # s if Z is on line j
    on_line = (Z[:, None, :] - coef[..., None] * d).norm(dim=-1) < 1e-12
    assert bool((on_line.sum(1) >= 1).all())
    J = on_line.double().argmax(1)
    freq = torch.bincount(J, minlength=3).double() / n
    assert (freq - 1 / 3).abs().max() < 4 * math.sqrt(2 / 9 / n)
    s = coef.gather(1, J[:, None])[:, 0]
    assert abs((s ** 2).mean().item() - 1) < 4 * math.sqrt(2 / n)


def test_degenerate_lines_make_A_singular():
    """Negative control of Theorem 3.1: rank A_{w,w*} = number of lines that meet S(w, w*) (< p)."""
    p = 4
    g = fl.generator(12, "cpu")
    d = torch.randn(3, p, generator=g, dtype=f64)
    Z = distributions.degenerate_lines(4000, d, generator=g, dtype=f64)
    w_star = torch.randn(p, generator=g, dtype=f64)
    W = torch.randn(6, p, generator=g, dtype=f64)
    A_pos, A_neg = theory.A_matrices(W, w_star, Z)
    for r in range(W.shape[0]):
        # a line s·d meets S(w, w*) iff wᵀd and w*ᵀd have the same sign (s takes both signs)
        in_region = int(((W[r] @ d.T) * (w_star @ d.T) > 0).sum())
        assert torch.linalg.matrix_rank(A_pos[r], hermitian=True).item() == in_region
        assert torch.linalg.matrix_rank(A_neg[r], hermitian=True).item() == 3 - in_region
        assert torch.linalg.eigvalsh(A_pos[r])[0].abs() < 1e-12              # singular: Thm 3.1 fails
    # the Gaussian, in contrast, gives A_{w,w*} ≻ 0
    Zg = distributions.gaussian(4000, 1, p, generator=g, dtype=f64)
    assert torch.linalg.eigvalsh(theory.A_matrices(W, w_star, Zg)[0])[:, 0].min() > 0.01


@pytest.mark.parametrize("call,match", [
    (lambda: distributions.angular_mixture(0, 1.0, seed=0), "n must be a positive integer"),
    (lambda: distributions.angular_mixture(5, 0.0, seed=0), "sigma must be a positive finite number"),
    (lambda: distributions.angular_mixture(5, float("inf"), seed=0), "sigma must be a positive finite number"),
    (lambda: distributions.angular_mixture(5, -1.0, seed=0), "sigma must be a positive finite number"),
    (lambda: distributions.angular_mixture(5, "1", seed=0), "sigma must be a positive finite number"),
    (lambda: distributions.angular_mixture(5, 1.0, p=1, seed=0), "p must be at least 2"),
    (lambda: distributions.angular_mixture(5, 1.0, p=0, seed=0), "p must be a positive integer"),
    (lambda: distributions.angular_mixture(5, 1.0, w_star=[0.0, 0.0], seed=0), "w_star must be non-zero"),
    (lambda: distributions.angular_mixture(5, 1.0, w_star=[float("nan"), 1.0], seed=0), "w_star contains NaN"),
    (lambda: distributions.angular_mixture(5, 1.0), "pass a seed"),
    (lambda: distributions.angular_mixture(5, 1.0, seed=0, generator=fl.generator(0, "cpu")), "generator or seed"),
    (lambda: distributions.uniform_cube(5, 0, 2, seed=0), "k must be a positive integer"),
    (lambda: distributions.uniform_cube(5, 1, 2, seed=0, dtype=torch.int64), "dtype must be"),
    (lambda: distributions.laplace(5, 1, -2, seed=0), "p must be a positive integer"),
    (lambda: distributions.laplace(2.0, 1, 2, seed=0), "n must be a positive integer"),
    (lambda: distributions.degenerate_lines(5, [[1.0, 0.0], [0.0, 0.0]], seed=0), "directions must be non-zero"),
    (lambda: distributions.degenerate_lines(5, [[1.0, float("inf")]], seed=0), "directions contains NaN"),
    (lambda: distributions.degenerate_lines(5, [1.0, 0.0], seed=0), "directions must have 2 dimensions"),
    (lambda: distributions.degenerate_lines(5, torch.empty(0, 3), seed=0), "directions must not be empty"),
    (lambda: distributions.degenerate_lines(-5, [[1.0, 0.0]], seed=0), "n must be a positive integer"),
    (lambda: distributions.close_patches(5, 0, 1.0, seed=0), "k must be a positive integer"),
    (lambda: distributions.close_patches(5, 2, 0.0, seed=0), "sigma2 must be a positive finite number"),
    (lambda: distributions.close_patches(5, 2, float("nan"), seed=0), "sigma2 must be a positive finite number"),
    (lambda: distributions.close_patches(5, 2, 1.0, base_sigma=-1.0, seed=0), "base_sigma must be a positive"),
    (lambda: distributions.close_patches(5, 2, 1.0, w_star=[1.0, 0.0, 0.0], seed=0), "w_star must have shape"),
])
def test_new_samplers_bad_input_names_the_parameter(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
