"""filterlib.initialization: samplers of random starts, the regularized incomplete beta function, the exact success
probabilities of a random start against Monte Carlo and closed forms, Theorem 4.4's bound, restarts, input checks."""
import math

import numpy as np
import pytest
import torch

import filterlib as fl
from filterlib import initialization
from filterlib.initialization import betainc

f64 = torch.float64


def _e1(p, scale=1.0):
    w = torch.zeros(p, dtype=f64)
    w[0] = scale
    return w


# ---------------------------------------------------------------------------------------------------------------
# Samplers


@pytest.mark.parametrize("p", [1, 3, 8])
def test_ball_is_uniform_in_the_ball(p):
    m, radius = 100_000, 2.5
    W = initialization.ball(m, p, radius, seed=p, dtype=f64)
    assert W.shape == (m, p) and W.dtype == f64
    r = W.norm(dim=1)
    assert float(r.max()) <= radius
    # P(‖w‖ ≤ R/2) = 2^{−p} (volume ratio) and (‖w‖/R)^p ~ U[0, 1]
    q = 2.0 ** -p
    assert abs(float((r <= radius / 2).to(f64).mean()) - q) < 4 * math.sqrt(q * (1 - q) / m)
    assert abs(float(((r / radius) ** p).mean()) - 0.5) < 4 * math.sqrt(1 / 12 / m)
    # the direction has mean 0 and, for p > 1, second moment I/p
    u = W / r[:, None]
    assert float(u.mean(0).abs().max()) < 4 / math.sqrt(m)
    torch.testing.assert_close(u.T @ u / m, torch.eye(p, dtype=f64) / p, rtol=0, atol=4 / math.sqrt(m))


def test_sphere_is_uniform_on_the_sphere():
    m, p = 100_000, 4
    W = initialization.sphere(m, p, 0.7, seed=1, dtype=f64)
    torch.testing.assert_close(W.norm(dim=1), torch.full((m,), 0.7, dtype=f64))
    u = W / 0.7
    assert float(u.mean(0).abs().max()) < 4 / math.sqrt(m)
    torch.testing.assert_close(u.T @ u / m, torch.eye(p, dtype=f64) / p, rtol=0, atol=4 / math.sqrt(m))
    # cos θ(u, e1) for p = 3 is U[−1, 1] (Archimedes): check its mean and variance
    c = initialization.sphere(m, 3, 1.0, seed=2, dtype=f64)[:, 0]
    assert abs(float(c.mean())) < 4 * math.sqrt(1 / 3 / m) and abs(float(c.var()) - 1 / 3) < 0.01


def test_samplers_seeding_and_dtype():
    torch.testing.assert_close(initialization.ball(5, 3, 1.0, seed=4), initialization.ball(5, 3, 1.0, seed=4))
    g1, g2 = fl.generator(4, "cpu"), fl.generator(4, "cpu")
    torch.testing.assert_close(initialization.sphere(5, 3, 1.0, generator=g1),
                               initialization.sphere(5, 3, 1.0, generator=g2))
    assert initialization.ball(3, 2, 1.0, seed=0, dtype=torch.float32).dtype == torch.float32
    assert not torch.equal(initialization.ball(5, 3, 1.0, seed=4), initialization.ball(5, 3, 1.0, seed=5))


# ---------------------------------------------------------------------------------------------------------------
# The regularized incomplete beta function


@pytest.mark.parametrize("a", [0.5, 1.0, 2.5, 24.5, 300.0])
def test_betainc_closed_forms(a):
    """I_x(a, 1) = x^a, I_x(1, b) = 1 − (1 − x)^b, I_x(a, b) = 1 − I_{1−x}(b, a), I_x(½, ½) = (2/π) arcsin √x."""
    x = torch.linspace(0, 1, 201, dtype=f64)
    torch.testing.assert_close(betainc(a, 1.0, x), x ** a, rtol=0, atol=1e-13)
    torch.testing.assert_close(betainc(1.0, a, x), 1 - (1 - x) ** a, rtol=0, atol=1e-13)
    torch.testing.assert_close(betainc(a, 0.5, x), 1 - betainc(0.5, a, 1 - x), rtol=0, atol=1e-14)
    torch.testing.assert_close(betainc(0.5, 0.5, x), 2 / math.pi * torch.arcsin(x.sqrt()), rtol=0, atol=1e-14)


def test_betainc_against_quadrature():
    """I_x(a, b) for non-trivial a, b against a fine Simpson rule on the density x^{a−1}(1 − x)^{b−1}/B(a, b)
    (exponents ≥ 1.5, so that the rule's error is far below the tolerance)."""
    for a, b in [(3.5, 2.5), (4.0, 3.5), (12.5, 2.5)]:
        t = torch.linspace(0, 1, 200_001, dtype=f64)
        dens = t ** (a - 1) * (1 - t) ** (b - 1) * math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b))
        h = float(t[1] - t[0])
        w = torch.ones_like(t)
        w[1:-1:2], w[2:-1:2] = 4, 2
        cdf = torch.cumsum(dens * w, 0) * h / 3                     # Simpson weights, exact at even indices
        idx = torch.arange(0, 200_001, 20_000)
        torch.testing.assert_close(betainc(a, b, t[idx]), cdf[idx] - (dens[idx] * w[idx] - dens[idx]) * h / 3,
                                   rtol=0, atol=1e-10)


# ---------------------------------------------------------------------------------------------------------------
# P(‖r u − w*‖ < ‖w*‖) on the sphere


def test_sphere_probability_exact_special_cases():
    t = torch.cat([torch.logspace(-12, -3, 10, dtype=f64), torch.linspace(0.001, 0.999, 60, dtype=f64)])
    torch.testing.assert_close(initialization.success_probability_sphere(3, 2 * t), (1 - t) / 2, rtol=0, atol=1e-14)
    torch.testing.assert_close(initialization.success_probability_sphere(2, 2 * t), torch.arccos(t) / math.pi,
                               rtol=0, atol=1e-14)
    assert initialization.success_probability_sphere(1, 1.3) == 0.5
    assert initialization.success_probability_sphere(1, 2.0) == 0.0
    for p in (2, 7, 40):
        assert initialization.success_probability_sphere(p, 2.0) == 0.0
        assert initialization.success_probability_sphere(p, 5.0) == 0.0
        assert abs(initialization.success_probability_sphere(p, 1e-9) - 0.5) < 1e-8
        vals = initialization.success_probability_sphere(p, torch.linspace(0.01, 1.99, 50, dtype=f64))
        assert bool((vals[1:] < vals[:-1]).all())
    # the check value of chapters/initialization.md
    assert abs(initialization.success_probability_sphere(10, 0.5) - 0.2292) < 5e-5


def test_sphere_probability_against_density_quadrature():
    """P(cos θ > t) = ∫_t^1 (1 − c²)^{(p−3)/2} dc / B(½, (p−1)/2) by a fine trapezoid rule (p ≥ 3: smooth density)."""
    for p in (4, 10, 25):
        const = math.exp(math.lgamma(p / 2) - math.lgamma(0.5) - math.lgamma((p - 1) / 2))
        for t in (0.1, 0.35, 0.8):
            c = torch.linspace(t, 1, 400_001, dtype=f64)
            expected = float(torch.trapezoid((1 - c * c).clamp(min=0) ** ((p - 3) / 2) * const, c))
            assert abs(initialization.success_probability_sphere(p, 2 * t) - expected) < 1e-8


@pytest.mark.parametrize("p", [2, 5, 10, 25])
def test_sphere_probability_against_monte_carlo(p):
    m = 100_000
    w_star = _e1(p, 2.0)                                     # radii are in units of ‖w*‖
    starts = initialization.sphere(m, p, 1.0, seed=p, dtype=f64)      # unit directions, scaled per r below
    for r in (0.3, 1.0, 1.7):
        hit = float(((r * 2.0 * starts - w_star).norm(dim=1) < w_star.norm()).to(f64).mean())
        q = initialization.success_probability_sphere(p, r)
        assert abs(hit - q) < 4 * math.sqrt(max(q * (1 - q), 1e-4) / m), (p, r, hit, q)


# ---------------------------------------------------------------------------------------------------------------
# Theorem 4.4's event for a start uniform in the ball


@pytest.mark.parametrize("p", [1, 2, 5, 10, 30])
def test_ball_probability_against_monte_carlo(p):
    m = 100_000
    g = fl.generator(100 + p, "cpu")
    w_star = _e1(p, 3.0)
    for alpha in (0.5 / math.sqrt(2 * p), 1 / math.sqrt(2 * p), 0.6):
        w0 = initialization.ball(m, p, alpha * 3.0, generator=g, dtype=f64)
        hit = float(((w0 - w_star).norm(dim=1) <= math.sqrt(1 - alpha ** 2) * 3.0).to(f64).mean())
        q = initialization.success_probability_ball(p, alpha)
        assert abs(hit - q) < 4 * math.sqrt(max(q * (1 - q), 1e-4) / m), (p, alpha, hit, q)


def test_ball_probability_exact_cases():
    alphas = torch.tensor([1e-8, 1e-6, 1e-3, 0.05, 0.3, 0.7, 0.99, 1.0], dtype=f64)
    r0 = alphas ** 2 / (1 + torch.sqrt(1 - alphas ** 2))                       # = 1 − √(1 − α²), no cancellation
    # p = 1: w0 uniform on [−α, α], event w0 ≥ 1 − √(1 − α²)
    torch.testing.assert_close(initialization.success_probability_ball(1, alphas), (alphas - r0) / (2 * alphas),
                               rtol=0, atol=1e-14)
    # p = 3: the sphere probability is (1 − t(r))/2, integrate 3r²/α³ against it in closed form
    a = alphas

    def antiderivative(r):   # ∫ 3r²/α³ · (1 − (r² + α²)/(2r))/2 dr
        return (r ** 3 / a ** 3 - 3 * r ** 4 / (8 * a ** 3) - 3 * r ** 2 / (4 * a)) / 2

    torch.testing.assert_close(initialization.success_probability_ball(3, alphas), antiderivative(a) - antiderivative(r0),
                               rtol=0, atol=1e-13)
    for p in (2, 10, 50):
        assert initialization.success_probability_ball(p, 1.0) == 0.0
        assert abs(initialization.success_probability_ball(p, 1e-8) - 0.5) < 1e-6
    # vectorised over alpha = the scalar calls; numpy in gives a float64 tensor out
    arr = np.array([0.1, 0.2, 0.4])
    out = initialization.success_probability_ball(7, arr)
    assert isinstance(out, torch.Tensor) and out.dtype == f64 and out.shape == (3,)
    for i, x in enumerate(arr):
        assert abs(float(out[i]) - initialization.success_probability_ball(7, float(x))) < 1e-15
    low_precision = torch.tensor([0.1, 0.2], dtype=torch.float32)
    assert initialization.success_probability_ball(7, low_precision).dtype == torch.float32


def test_theorem_4_4_bound_never_exceeds_the_exact_probability():
    """½ − α√(p/2) ≤ exact P for p ∈ {2, …, 50} and α ∈ (0, 1/√(2p)] (Theorem 4.4)."""
    gaps = []
    for p in range(2, 51):
        a = np.linspace(1e-4, 1, 60) / math.sqrt(2 * p)
        exact = initialization.success_probability_ball(p, a)
        bound = initialization.theorem_4_4_bound(p, a)
        gaps.append(float((exact - bound).min()))
        assert bool((bound <= exact).all()), p
        assert abs(float(bound[-1])) < 1e-12                          # the bound reaches 0 at α = 1/√(2p)
    assert min(gaps) > 0
    # the formula, and negative values returned as is outside the theorem's range
    assert initialization.theorem_4_4_bound(8, 0.1) == pytest.approx(0.5 - 0.2, rel=1e-15)
    assert initialization.theorem_4_4_bound(8, 0.9) < 0


def test_corollary_4_1():
    """cos φ* < 1/√(8p) ⇒ the bound (and the exact probability) exceeds ¼ with α = cos φ*."""
    for p in (2, 9, 25):
        alpha = 0.999 / math.sqrt(8 * p)
        assert initialization.theorem_4_4_bound(p, alpha) > 0.25
        assert initialization.success_probability_ball(p, alpha) > initialization.theorem_4_4_bound(p, alpha)


def test_restart_success_formula_and_simulation():
    assert initialization.restart_success(0.3, 1) == pytest.approx(0.3)
    assert initialization.restart_success(0.3, 4) == pytest.approx(1 - 0.7 ** 4)
    assert initialization.restart_success(0.0, 5) == 0.0 and initialization.restart_success(1.0, 5) == 1.0
    torch.testing.assert_close(initialization.restart_success(torch.tensor([0.1, 0.5], dtype=f64), 3),
                               torch.tensor([1 - 0.9 ** 3, 1 - 0.5 ** 3], dtype=f64))
    # simulated restarts from the ball
    p, alpha, trials = 10, 0.5 / math.sqrt(20), 20_000
    draws = initialization.ball(trials * 8, p, alpha, seed=9, dtype=f64).reshape(trials, 8, p)
    good = (draws - _e1(p)).norm(dim=-1) <= math.sqrt(1 - alpha ** 2)
    q = initialization.success_probability_ball(p, alpha)
    for m in (1, 2, 4, 8):
        sim = float(good[:, :m].any(dim=1).to(f64).mean())
        expected = initialization.restart_success(q, m)
        assert abs(sim - expected) < 4 * math.sqrt(expected * (1 - expected) / trials), (m, sim, expected)


# ---------------------------------------------------------------------------------------------------------------
# Input checks


BAD = [
    (lambda: initialization.success_probability_ball(5, 0.0), ValueError, r"alpha must lie in \(0, 1\]"),
    (lambda: initialization.success_probability_ball(5, 1.5), ValueError, r"alpha must lie in \(0, 1\]"),
    (lambda: initialization.success_probability_ball(5, [0.2, -0.1]), ValueError, r"alpha must lie in"),
    (lambda: initialization.success_probability_ball(5, float("nan")), ValueError, "alpha contains NaN"),
    (lambda: initialization.theorem_4_4_bound(5, 2.0), ValueError, r"alpha must lie in \(0, 1\]"),
    (lambda: initialization.theorem_4_4_bound(5, -0.1), ValueError, r"alpha must lie in"),
    (lambda: initialization.success_probability_ball(0, 0.1), ValueError, "p must be a positive integer"),
    (lambda: initialization.theorem_4_4_bound(-3, 0.1), ValueError, "p must be a positive integer"),
    (lambda: initialization.success_probability_sphere(0, 0.5), ValueError, "p must be a positive integer"),
    (lambda: initialization.success_probability_sphere(2.5, 0.5), TypeError, "p must be a positive integer"),
    (lambda: initialization.success_probability_sphere(3, 0.0), ValueError, r"r must lie in \(0, inf\)"),
    (lambda: initialization.success_probability_sphere(3, -1.0), ValueError, "r must lie in"),
    (lambda: initialization.success_probability_sphere(3, True), TypeError, "r must be a real number"),
    (lambda: initialization.success_probability_sphere(3, []), ValueError, "r must not be empty"),
    (lambda: initialization.restart_success(1.2, 3), ValueError, r"q must lie in \[0, 1\]"),
    (lambda: initialization.restart_success(0.5, 0), ValueError, "m must be a positive integer"),
    (lambda: initialization.ball(10, 3, 0.0, seed=0), ValueError, "radius must be a positive"),
    (lambda: initialization.ball(0, 3, 1.0, seed=0), ValueError, "m must be a positive integer"),
    (lambda: initialization.sphere(10, 0, 1.0, seed=0), ValueError, "p must be a positive integer"),
    (lambda: initialization.sphere(10, 3, 1.0), ValueError, "pass a seed"),
    (lambda: initialization.ball(10, 3, 1.0, seed=0, dtype=torch.int64), TypeError, "dtype must be"),
]


@pytest.mark.parametrize("call,exc,match", BAD)
def test_bad_input_names_the_parameter(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_numbers_in_floats_out():
    assert isinstance(initialization.success_probability_sphere(4, 0.5), float)
    assert isinstance(initialization.success_probability_ball(4, np.float64(0.2)), float)
    assert isinstance(initialization.theorem_4_4_bound(4, 0.2), float)
    assert isinstance(initialization.restart_success(0.2, 3), float)
    assert isinstance(initialization.theorem_4_4_bound(4, np.array([0.2, 0.3])), torch.Tensor)
