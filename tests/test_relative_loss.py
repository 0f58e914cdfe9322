"""filterlib.model.relative_loss (Fig. 3(c)/(d), Fig. 5; chapters/mnist.md): a hand computation, its link to the
loss, batching, scale invariance, the exact fit (−inf, never NaN, also in a batch), the residual-only pass of
filterlib.kernel, chunking and input checks."""
import math

import pytest
import torch

import filterlib as fl
from filterlib import distributions, kernel, model

f64 = torch.float64


@pytest.fixture
def sample():
    g = fl.generator(11, "cpu")
    Z = distributions.gaussian(400, 3, 5, generator=g, dtype=f64)
    w_star = torch.randn(5, generator=g, dtype=f64)
    W = w_star + 0.3 * torch.randn(4, 5, generator=g, dtype=f64)
    return Z, w_star, W


def test_hand_computation():
    # Two inputs with k = 2 patches of size 2.
    Z = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[2.0, 1.0], [1.0, -1.0]]], dtype=f64)
    w_star = torch.tensor([1.0, 1.0], dtype=f64)    # y = ((1 + 1)/2, (3 + 0)/2) = (1, 1.5), mean 1.25
    w = torch.tensor([1.0, 0.0], dtype=f64)         # f = ((1 + 0)/2, (2 + 1)/2) = (0.5, 1.5)
    # squared errors 0.25 and 0, mean 0.125 (no ½); RL = log10(0.125 / 1.25²) = log10(0.08)
    assert float(model.relative_loss(w, w_star, Z)) == pytest.approx(math.log10(0.08), rel=1e-14)


def test_equals_log10_of_twice_the_loss_over_mean_label_squared(sample):
    Z, w_star, W = sample
    y_bar = fl.forward(w_star, Z).mean()
    expected = torch.log10(2 * fl.loss(W, w_star, Z) / y_bar ** 2)
    torch.testing.assert_close(model.relative_loss(W, w_star, Z), expected, rtol=1e-12, atol=0)


def test_shapes_and_batching(sample):
    Z, w_star, W = sample
    assert model.relative_loss(W[0], w_star, Z).shape == ()
    batched = model.relative_loss(W, w_star, Z)
    assert batched.shape == (4,)
    looped = torch.stack([model.relative_loss(w, w_star, Z) for w in W])
    torch.testing.assert_close(batched, looped, rtol=1e-12, atol=0)
    per_run = torch.stack([Z, Z.flip(0), Z[:, [2, 0, 1]], 2 * Z])         # (R, n, k, p): one sample per run
    expected = torch.stack([model.relative_loss(W[r], w_star, per_run[r]) for r in range(4)])
    torch.testing.assert_close(model.relative_loss(W, w_star, per_run), expected, rtol=1e-12, atol=0)


def test_scale_invariance(sample):
    """f is positively homogeneous in w, so scaling student and teacher together leaves RL unchanged."""
    Z, w_star, W = sample
    rl = model.relative_loss(W, w_star, Z)
    for c in (1e-3, 0.5, 7.0):
        torch.testing.assert_close(model.relative_loss(c * W, c * w_star, Z), rl, rtol=1e-12, atol=1e-12)


def test_exact_fit_is_minus_infinity_not_nan(sample):
    Z, w_star, W = sample
    assert model.relative_loss(w_star, w_star, Z).item() == -math.inf
    both = model.relative_loss(torch.stack([w_star, W[0]]), w_star, Z)   # in a batch too
    assert both[0].item() == -math.inf and math.isfinite(both[1].item())
    assert not bool(torch.isnan(both).any())


@pytest.mark.parametrize("dtype", [torch.float32, f64])
def test_a_filter_equal_to_the_teacher_has_residual_exactly_zero(dtype):
    """For every batch size R = 1..40 (both layouts of the pre-activations, R < and ≥ ROW_LAYOUT_MIN_R), w* at
    several positions in the batch, shared and per-run samples, float32 and float64: RL = −inf exactly there."""
    g = fl.generator(5, "cpu")
    Z = distributions.gaussian(300, 4, 7, generator=g, dtype=dtype)
    w_star = torch.randn(7, generator=g, dtype=dtype)
    assert kernel.ROW_LAYOUT_MIN_R < 40
    for R in range(1, 41):
        W = w_star + 0.5 * torch.randn(R, 7, generator=g, dtype=dtype)
        at = torch.arange(R) % 3 == (R % 3)                                # w* at about a third of the positions
        at[R - 1] = True                                                   # and at the last one
        W[at] = w_star
        sse, y = kernel.residual_pass(W, w_star, Z)
        assert bool((sse[at] == 0).all()) and bool((sse[~at] > 0).all()), R
        rl = model.relative_loss(W, w_star, Z)
        assert bool((rl[at] == -math.inf).all()) and bool(torch.isfinite(rl[~at]).all()), R
        if R % 7 == 0:                                                     # per-run samples
            Zr = distributions.gaussian(R * 30, 4, 7, generator=g, dtype=dtype).reshape(R, 30, 4, 7)
            rl = model.relative_loss(W, w_star, Zr)
            assert bool((rl[at] == -math.inf).all()) and bool(torch.isfinite(rl[~at]).all()), R


def test_residual_pass_matches_the_plain_formula(small_chunks):
    """The residuals summed patch by patch agree with f(w, Z) − f(w*, Z) to rounding, on many ragged chunks."""
    g = fl.generator(6, "cpu")
    Z = distributions.gaussian(203, 9, 5, generator=g, dtype=f64)
    w_star = torch.randn(5, generator=g, dtype=f64)
    small_chunks()
    for R in (1, 3, 16, 21):
        W = torch.randn(R, 5, generator=g, dtype=f64)
        assert kernel.chunk_examples(9, 5, R, Z) < 203
        sse, y = kernel.residual_pass(W, w_star, Z)
        y_plain = torch.relu(Z @ w_star).mean(dim=-1)
        resid = torch.relu(torch.einsum("nkp,rp->rnk", Z, W)).mean(dim=-1) - y_plain
        torch.testing.assert_close(y, y_plain, rtol=1e-14, atol=1e-15)
        torch.testing.assert_close(sse, (resid * resid).sum(dim=-1), rtol=1e-12, atol=0)


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of a few examples, so that a pass spans many chunks, the last one ragged."""
    def set_small():
        monkeypatch.setattr(kernel, "CHUNK_BYTES", 1000)
        monkeypatch.setattr(kernel, "MIN_CHUNK_BYTES", 1000)
        monkeypatch.setattr(kernel, "PER_RUN_CHUNK_ELEMENTS", 50)         # 4 runs × 3 patches: 4 inputs a chunk
    return set_small


def test_chunked_sum_matches_one_pass(sample, small_chunks):
    Z, w_star, W = sample
    per_run = torch.stack([Z, Z.flip(0), Z[:, [2, 0, 1]], 2 * Z])
    whole, whole_per_run = model.relative_loss(W, w_star, Z), model.relative_loss(W, w_star, per_run)
    small_chunks()
    assert kernel.chunk_examples(3, 5, 4, Z) < 400
    torch.testing.assert_close(model.relative_loss(W, w_star, Z), whole, rtol=1e-12, atol=0)
    torch.testing.assert_close(model.relative_loss(W, w_star, per_run), whole_per_run, rtol=1e-12, atol=0)


def test_zero_mean_label_is_a_clear_error():
    Z = torch.rand(20, 3, 4, dtype=f64)                                    # non-negative patches, like images
    with pytest.raises(ValueError, match="w_star gives labels .* mean is 0"):
        model.relative_loss(torch.ones(4, dtype=f64), -torch.ones(4, dtype=f64), Z)


@pytest.mark.parametrize("w,w_star,Z,exc,match", [
    (torch.ones(3, dtype=f64), torch.ones(4, dtype=f64), torch.rand(5, 2, 4, dtype=f64), ValueError,
     "w must have size p=4"),
    (torch.ones(4, dtype=f64), torch.ones(3, dtype=f64), torch.rand(5, 2, 4, dtype=f64), ValueError,
     "w_star must have shape"),
    (torch.ones(4, dtype=torch.int64), torch.ones(4, dtype=f64), torch.rand(5, 2, 4, dtype=f64), TypeError,
     "w must be a float32 or float64"),
    (torch.ones(4, dtype=f64), torch.ones(4, dtype=f64), torch.rand(5, 4, dtype=f64), ValueError,
     "Z must have 3 or 4 dimensions"),
    (torch.ones(4, dtype=f64), torch.ones(4, dtype=torch.float32), torch.rand(5, 2, 4, dtype=f64), TypeError,
     "w_star has dtype"),
    (torch.full((4,), math.nan, dtype=f64), torch.ones(4, dtype=f64), torch.rand(5, 2, 4, dtype=f64), ValueError,
     "w contains NaN"),
])
def test_bad_input(w, w_star, Z, exc, match):
    with pytest.raises(exc, match=match):
        model.relative_loss(w, w_star, Z)
