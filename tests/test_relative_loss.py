"""filterlib.model.relative_loss (Fig. 3(c)/(d), Fig. 5): a hand computation, its link to the loss, batching,
scale invariance, the exact fit (−inf, never NaN), chunking and input checks."""
import math

import pytest
import torch

import filterlib as fl
from filterlib import distributions, model

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
    # In a batch the student's outputs come from another kernel than the teacher's, so w = w* may give a
    # rounding-level error (RL ≈ −30 in float64) rather than exactly −inf; never NaN either way.
    both = model.relative_loss(torch.stack([w_star, W[0]]), w_star, Z)
    assert both[0].item() < -25 and math.isfinite(both[1].item())
    assert not bool(torch.isnan(both).any())


def test_chunked_sum_matches_one_pass(sample, monkeypatch):
    Z, w_star, W = sample
    whole = model.relative_loss(W, w_star, Z)
    monkeypatch.setattr(model, "_RL_CHUNK_ELEMENTS", 50)                  # 4 runs × 3 patches: 4 inputs a chunk
    torch.testing.assert_close(model.relative_loss(W, w_star, Z), whole, rtol=1e-12, atol=0)


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
