"""filterlib.theory.constants (several constants from one pass), the one moment kernel shared by Part I and Part II
(k = 1 gives the Part I numbers bit for bit) and the one min/max routine theory.extreme."""
import math

import pytest
import torch

import filterlib as fl
from filterlib import distributions, theory

f64 = torch.float64
ALL = ("gamma", "L", "L_minus", "cross_sum", "beta", "L_cross")
SINGLE = {"gamma": theory.conv_gamma, "L": theory.conv_L, "L_minus": theory.conv_L_minus,
          "cross_sum": theory.cross_sum}
GRID = {"beta": theory.conv_beta, "L_cross": theory.L_cross}


@pytest.fixture(scope="module")
def sample():
    Z = distributions.laplace(3000, 3, 3, seed=4, dtype=f64)
    return Z, torch.tensor([0.6, -0.8, 0.3], dtype=f64)


def equal(a, b):
    if isinstance(a, tuple):
        return all(equal(x, y) for x, y in zip(a, b))
    return a.shape == b.shape and torch.equal(a, b)


# ---------------------------------------------------------------------------------------------------------------
# constants() equals the single estimators


@pytest.mark.parametrize("return_se", [False, True])
def test_constants_equal_the_single_estimators_bit_for_bit(sample, return_se):
    """A constant computed alone (or with another of the same moments at the same angles) is the single estimator."""
    Z, w_star = sample
    phis = torch.tensor([0.0, 0.2, math.pi / 4, 2.0], dtype=f64)
    kw = dict(n_directions=6, seed=1, return_se=return_se)
    pair = theory.constants(Z, w_star, phis, which=("gamma", "L"), **kw)
    assert list(pair) == ["gamma", "L"]
    assert equal(pair["gamma"], theory.conv_gamma(Z, w_star, phis, **kw))
    assert equal(pair["L"], theory.conv_L(Z, w_star, phis, **kw))
    for name, single in SINGLE.items():
        assert equal(theory.constants(Z, w_star, phis, which=name, **kw)[name], single(Z, w_star, phis, **kw)), name
    grid = torch.tensor([0.1, 0.5, 1.5], dtype=f64)
    assert equal(theory.constants(Z, w_star, which="beta", beta_phis=grid, **kw)["beta"],
                 theory.conv_beta(Z, w_star, grid, **kw))
    assert equal(theory.constants(Z, w_star, which="L_cross", cross_phis=grid, **kw)["L_cross"],
                 theory.L_cross(Z, w_star, grid, **kw))
    assert equal(theory.constants(Z, w_star, which="beta", **kw)["beta"], theory.conv_beta(Z, w_star, **kw))
    assert equal(theory.constants(Z, w_star, which="L_cross", **kw)["L_cross"], theory.L_cross(Z, w_star, **kw))


def test_constants_sharing_a_pass_agree_with_the_single_estimators_to_rounding(sample, monkeypatch):
    """All six constants at once: the shared passes sum in other chunks, so agreement is to rounding."""
    Z, w_star = sample
    Z = Z[:1000]
    monkeypatch.setattr(theory.moments, "_CHUNK_ELEMENTS", 200_000)     # several chunks, sized by the pass
    phis = torch.tensor([0.3, 1.1], dtype=f64)
    kw = dict(n_directions=5, seed=2, return_se=True)
    got = theory.constants(Z, w_star, phis, which=ALL, **kw)
    assert list(got) == list(ALL)
    for name, single in SINGLE.items():
        for a, b in zip(got[name], single(Z, w_star, phis, **kw)):
            assert a.shape == (2,)
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)
    for name, single in GRID.items():
        for a, b in zip(got[name], single(Z, w_star, **kw)):
            assert a.shape == ()
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)


def test_constants_scalar_angle_and_error_bars(sample):
    Z, w_star = sample
    got = theory.constants(Z, w_star, 0.4, which=("gamma", "cross_sum", "L_cross"), n_directions=4)
    assert all(t.shape == () for t in got.values())
    torch.testing.assert_close(got["gamma"], theory.conv_gamma(Z, w_star, 0.4, n_directions=4), rtol=0, atol=0)
    with_se = theory.constants(Z, w_star, 0.4, which=("L",), n_directions=4, return_se=True, n_batches=5)
    value, se = with_se["L"]
    assert value.shape == se.shape == () and float(se) > 0


def test_constants_bad_input(sample):
    Z, w_star = sample
    with pytest.raises(ValueError, match="phis is needed for gamma"):
        theory.constants(Z, w_star, which=("gamma", "beta"))
    with pytest.raises(ValueError, match="which must name constants"):
        theory.constants(Z, w_star, 0.3, which=("gamma", "delta"))
    with pytest.raises(ValueError, match="which must name at least one"):
        theory.constants(Z, w_star, 0.3, which=())
    with pytest.raises(ValueError, match="phis must lie in"):
        theory.constants(Z, w_star, 4.0)
    with pytest.raises(ValueError, match=r"beta_phis must lie in \(0"):
        theory.constants(Z, w_star, which="beta", beta_phis=[0.0, 0.5])
    with pytest.raises(ValueError, match=r"cross_phis must lie in \(0"):
        theory.constants(Z, w_star, which="L_cross", cross_phis=[0.5, 2.0])
    with pytest.raises(ValueError, match="w_star must be non-zero"):
        theory.constants(Z, torch.zeros(3, dtype=f64), 0.3)
    with pytest.raises(TypeError, match="return_se must be True or False"):
        theory.constants(Z, w_star, 0.3, return_se=1)


# ---------------------------------------------------------------------------------------------------------------
# One pass per set of angles


def count_passes(monkeypatch):
    calls = []
    kernel = theory.moments.moment_sums

    def counting(W, w_star, Z, keys, n_batches=1):
        calls.append((W.shape[0], tuple(keys)))
        return kernel(W, w_star, Z, keys, n_batches)
    monkeypatch.setattr(theory.moments, "moment_sums", counting)
    return calls


def test_one_pass_per_angle_set(sample, monkeypatch):
    Z, w_star = sample
    calls = count_passes(monkeypatch)
    m = 4
    theory.constants(Z, w_star, which=("beta", "L_cross"), n_directions=m)      # beta's grid is L_cross's tail
    assert calls == [(24 * m, ("neg", "T1", "T2", "T4"))]
    calls.clear()
    theory.constants(Z, w_star, [0.2, 0.7], which=ALL, n_directions=m, return_se=True)
    assert sorted(calls) == sorted([(24 * m, ("neg", "T1", "T2", "T4")), (2 * m, ("pos", "neg", "T1", "T2", "T4"))])
    calls.clear()
    tail = theory.default_beta_grid(dtype=f64)[3:7]                            # a contiguous piece of both grids
    theory.constants(Z, w_star, tail, which=("gamma", "L", "beta"), n_directions=m)
    assert calls == [(16 * m, ("pos", "neg"))]
    calls.clear()
    theory.constants(Z, w_star, [0.2, 0.7], which=("gamma", "L", "L_minus"), n_directions=m)
    assert calls == [(2 * m, ("pos", "neg"))]


def test_diagnose_use_case_slices_the_cross_grid_pass_bit_for_bit(sample):
    """constants(which=("beta", "L_cross")) equals the sums over the cross grid with β read off its tail, and β as
    one max over every (φ, direction) pair with scale 1/φ (the flat form), value and error bar."""
    Z, w_star = sample
    B, m = 10, 5
    cross, bgrid = theory.default_cross_grid(dtype=f64), theory.default_beta_grid(dtype=f64)
    nb = bgrid.shape[0]
    assert torch.equal(cross[-nb:], bgrid)
    got = theory.constants(Z, w_star, which=("beta", "L_cross"), n_directions=m, return_se=True, n_batches=B)
    S, counts = theory.candidate_sums(Z, w_star, cross, m, 0, B, ["neg", "T1", "T2", "T4"])
    p = Z.shape[-1]
    flat = S["neg"][:, -nb:].reshape(B, nb * m, 1, p, p)                        # groups of one candidate each
    beta = theory.extreme(flat, counts, scale=(1 / bgrid).repeat_interleave(m), over_grid=True, return_se=True)
    assert equal(got["beta"], beta)
    lx = theory.extreme([S["T1"], S["T2"], S["T4"]], counts, kind="singular", scale=1 / cross, over_grid=True,
                        return_se=True)
    assert equal(got["L_cross"], lx)


# ---------------------------------------------------------------------------------------------------------------
# k = 1: the Part II estimators are the Part I ones, bit for bit


@pytest.mark.parametrize("p", [2, 4])
def test_k_equal_1_is_part_I_bit_for_bit(p, monkeypatch):
    monkeypatch.setattr(theory.moments, "_CHUNK_ELEMENTS", 5_000)            # several chunks
    Z = distributions.laplace(3000, 1, p, seed=40 + p, dtype=f64)
    w_star = torch.tensor([1.0, -0.5, 0.3, 0.2][:p], dtype=f64)
    phis = torch.tensor([0.0, 0.4, math.pi / 2, 2.5], dtype=f64)
    for return_se in (False, True):
        kw = dict(n_directions=6, seed=3, return_se=return_se)
        for conv, one in [(theory.conv_gamma, theory.gamma), (theory.conv_L, theory.L),
                          (theory.conv_L_minus, theory.L_minus)]:
            assert equal(conv(Z, w_star, phis, **kw), one(Z, w_star, phis, **kw))
        assert equal(theory.conv_beta(Z, w_star, **kw), theory.beta(Z, w_star, **kw))
        both = theory.constants(Z, w_star, phis, which=("gamma", "L"), **kw)
        assert equal(both["gamma"], theory.gamma(Z, w_star, phis, **kw))
        assert equal(both["L"], theory.L(Z, w_star, phis, **kw))
    W = torch.randn(3, p, generator=fl.generator(4, "cpu"), dtype=f64)
    M = theory.conv_moments(W, w_star, Z)
    A_pos, A_neg = theory.A_matrices(W, w_star, Z)
    assert torch.equal(M["pos"], A_pos) and torch.equal(M["neg"], A_neg) and torch.equal(M["ZwZs"], A_pos)
    for key in ("T1", "T1p", "T2", "T4"):
        assert bool((M[key] == 0).all())


def test_moment_sums_are_the_per_batch_moments(sample):
    Z, w_star = sample
    W = torch.randn(4, 3, generator=fl.generator(6, "cpu"), dtype=f64)
    sums, counts = theory.moment_sums(W, w_star, Z, theory.CONV_MOMENT_KEYS, n_batches=3)
    assert counts.tolist() == [1000.0, 1000.0, 1000.0]
    whole = theory.conv_moments(W, w_star, Z)
    for key in theory.CONV_MOMENT_KEYS:
        assert sums[key].shape == (3, 4, 3, 3)
        torch.testing.assert_close(sums[key].sum(0) / 3000, whole[key], rtol=1e-12, atol=1e-15)
        torch.testing.assert_close(sums[key][1] / 1000, theory.conv_moments(W, w_star, Z[1000:2000])[key],
                                   rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------------------------------------------
# extreme()


def test_extreme_kinds_and_grid():
    g = fl.generator(7, "cpu")
    X = torch.randn(4, 3, 5, 2, 2, generator=g, dtype=f64)
    S = X @ X.transpose(-1, -2)                                                # (B, c, m, p, p) symmetric
    counts = torch.full((4,), 10.0, dtype=f64)
    mean = S.sum(0) / 40
    lam = torch.linalg.eigvalsh(mean)
    lo, none = theory.extreme(S, counts, kind="min")
    assert none is None and torch.equal(lo, lam[..., 0].min(-1).values)
    hi, _ = theory.extreme(S, counts)
    assert torch.equal(hi, lam[..., -1].max(-1).values)
    scale = torch.tensor([1.0, 2.0, 0.5], dtype=f64)
    top, se = theory.extreme(S, counts, scale=scale, over_grid=True, return_se=True)
    assert top.shape == se.shape == () and torch.equal(top, (hi * scale).max())
    # the flat form, every (group, direction) pair one group: the same value and error bar
    flat = S.reshape(4, 15, 1, 2, 2)
    assert equal((top, se), theory.extreme(flat, counts, scale=scale.repeat_interleave(5), over_grid=True,
                                          return_se=True))
    sv, _ = theory.extreme([S, 2 * S], counts, kind="singular")
    torch.testing.assert_close(sv, 3 * hi)                                     # σ_max = λ_max for PSD matrices
    with pytest.raises(ValueError, match="kind must be one of"):
        theory.extreme(S, counts, kind="median")
