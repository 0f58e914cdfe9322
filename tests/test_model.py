"""filterlib.model: shapes, batching, the closed-form gradient against autograd, patches, angles, errors."""
import math

import pytest
import torch
import torch.nn.functional as F

import filterlib as fl
from filterlib import distributions

f64 = torch.float64


@pytest.fixture
def sample():
    g = fl.generator(7, "cpu")
    Z = distributions.gaussian(300, 4, 6, generator=g, dtype=f64)
    w_star = torch.randn(6, generator=g, dtype=f64)
    W = torch.randn(5, 6, generator=g, dtype=f64)
    return Z, w_star, W


def test_shapes(sample):
    Z, w_star, W = sample
    assert fl.forward(W[0], Z).shape == (300,)
    assert fl.forward(W, Z).shape == (5, 300)
    assert fl.loss(W[0], w_star, Z).shape == ()
    assert fl.loss(W, w_star, Z).shape == (5,)
    assert fl.gradient(W[0], w_star, Z).shape == (6,)
    assert fl.gradient(W, w_star, Z).shape == (5, 6)
    assert fl.angle(W, w_star).shape == (5,)


def test_forward_is_average_of_relu(sample):
    Z, _, W = sample
    expected = torch.stack([torch.relu(Z[n] @ W[0]).sum() / 4 for n in range(Z.shape[0])])
    torch.testing.assert_close(fl.forward(W[0], Z), expected, rtol=1e-12, atol=1e-12)


def test_batched_equals_looped(sample):
    Z, w_star, W = sample
    for fn in (fl.forward, fl.gradient):
        args = (Z,) if fn is fl.forward else (w_star, Z)
        batched = fn(W, *args)
        looped = torch.stack([fn(w, *args) for w in W])
        torch.testing.assert_close(batched, looped, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(fl.loss(W, w_star, Z), torch.stack([fl.loss(w, w_star, Z) for w in W]))


def test_per_run_samples_equal_looped(sample):
    Z, w_star, W = sample
    Zr = Z.reshape(5, 60, 4, 6)  # a separate sample for each of the 5 filters
    batched = fl.gradient(W, w_star, Zr)
    looped = torch.stack([fl.gradient(W[r], w_star, Zr[r]) for r in range(5)])
    torch.testing.assert_close(batched, looped, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(fl.loss(W, w_star, Zr), torch.stack([fl.loss(W[r], w_star, Zr[r]) for r in range(5)]))


@pytest.mark.parametrize("k,p", [(1, 3), (4, 6), (9, 25)])
def test_gradient_matches_autograd(k, p):
    g = fl.generator(k * 100 + p, "cpu")
    Z = distributions.gaussian(500, k, p, generator=g, dtype=f64)
    w_star = torch.randn(p, generator=g, dtype=f64)
    for _ in range(3):
        w = torch.randn(p, generator=g, dtype=f64).requires_grad_()
        fl.loss(w, w_star, Z).backward()
        closed = fl.gradient(w.detach(), w_star, Z)
        rel = (w.grad - closed).norm() / closed.norm()
        assert rel < 1e-8, rel


def test_gradient_matches_gaussian_closed_form():
    """Non-overlapping Gaussian patches: the population gradient in closed form (Tian 2017 + cross-patch term)."""
    k, p = 3, 4
    g = fl.generator(3, "cpu")
    Z = distributions.gaussian(400_000, k, p, generator=g, dtype=f64)
    w_star = torch.tensor([1.0, -0.5, 0.3, 0.8], dtype=f64)
    w = torch.tensor([0.2, 0.4, -0.6, 0.5], dtype=f64)
    theta = fl.angle(w, w_star)
    wn, wsn = w.norm(), w_star.norm()
    pop = ((w / 2 - ((math.pi - theta) * w_star + wsn * torch.sin(theta) * w / wn) / (2 * math.pi)) / k
           + (k - 1) / (2 * math.pi * k) * (wn - wsn) * w / wn)
    assert (fl.gradient(w, w_star, Z) - pop).norm() < 4e-3 * pop.norm() + 2e-3


def test_gradient_uses_indicator_at_zero():
    """At w = 0 every patch counts as active (1{wᵀZ ≥ 0} = 1), as in the paper."""
    Z = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]], dtype=f64)
    w_star = torch.tensor([1.0, 1.0], dtype=f64)
    expected = -(torch.tensor([1.0, 0.0]) * 1.0 + torch.tensor([0.0, 1.0]) * 1.0).to(f64) / 2
    torch.testing.assert_close(fl.gradient(torch.zeros(2, dtype=f64), w_star, Z), expected)


def test_gradient_zero_at_teacher(sample):
    Z, w_star, _ = sample
    assert fl.gradient(w_star, w_star, Z).abs().max() == 0
    assert fl.loss(w_star, w_star, Z) == 0


def test_patches_match_conv2d():
    g = fl.generator(1, "cpu")
    images = torch.rand(3, 9, 8, generator=g, dtype=f64)
    w = torch.randn(9, generator=g, dtype=f64)
    for stride in (1, 2):
        Z = fl.patches(images, 3, stride)
        out = torch.relu(F.conv2d(images.unsqueeze(1), w.view(1, 1, 3, 3), stride=stride)).mean(dim=(1, 2, 3))
        torch.testing.assert_close(fl.forward(w, Z), out)
        assert Z.shape == (3, ((9 - 3) // stride + 1) * ((8 - 3) // stride + 1), 9)
    assert fl.patches(images, (2, 3), (1, 2)).shape == (3, 8 * 3, 6)
    torch.testing.assert_close(fl.patches(images, 3)[0, 0], images[0, :3, :3].reshape(-1))


def test_angle_values():
    w_star = torch.tensor([1.0, 0.0], dtype=f64)
    W = torch.tensor([[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0], [1.0, 1.0]], dtype=f64)
    torch.testing.assert_close(fl.angle(W, w_star), torch.tensor([0, math.pi / 2, math.pi, math.pi / 4], dtype=f64))


@pytest.mark.parametrize("call,match", [
    (lambda Z, ws: fl.forward(torch.ones(5, dtype=f64), Z), "w must have size p=6"),
    (lambda Z, ws: fl.forward(torch.ones(6, dtype=f64), Z[0]), "Z must have 3 or 4 dimensions"),
    (lambda Z, ws: fl.loss(torch.ones(6, dtype=f64), ws[:3], Z), "w_star must have shape"),
    (lambda Z, ws: fl.gradient(torch.ones(6, dtype=torch.float32), ws, Z), "dtype"),
    (lambda Z, ws: fl.gradient(torch.ones(6, dtype=f64) * float("nan"), ws, Z), "w contains NaN"),
    (lambda Z, ws: fl.gradient(torch.ones(6, dtype=f64), ws, Z.clone().fill_(float("inf"))), "Z contains NaN"),
    (lambda Z, ws: fl.gradient(torch.ones(3, 6, dtype=f64), ws, Z.reshape(5, 60, 4, 6)), r"shape \(R, p\)"),
    (lambda Z, ws: fl.angle(torch.zeros(6, dtype=f64), ws), "w must be non-zero"),
    (lambda Z, ws: fl.angle(torch.ones(6, dtype=f64), torch.zeros(6, dtype=f64)), "w_star must be non-zero"),
    (lambda Z, ws: fl.patches(torch.ones(2, 4, 4), 0), "size must be a positive integer"),
    (lambda Z, ws: fl.patches(torch.ones(2, 4, 4), 5), "larger than the images"),
    (lambda Z, ws: fl.patches(torch.ones(2, 4, 4), 2, stride=-1), "stride must be a positive integer"),
    (lambda Z, ws: fl.patches(torch.ones(4, 4), 2), "images must have 3 dimensions"),
    (lambda Z, ws: fl.forward(torch.ones(6, dtype=torch.int64), Z), "float32 or float64"),
    (lambda Z, ws: fl.forward(torch.ones(6, dtype=f64), Z[:0]), "Z must not be empty"),
])
def test_bad_input_names_the_parameter(sample, call, match):
    Z, w_star, _ = sample
    with pytest.raises((ValueError, TypeError), match=match):
        call(Z, w_star)


def test_numpy_and_lists_are_accepted():
    Z = [[[1.0, 2.0]], [[-1.0, 0.5]]]
    assert fl.forward([0.5, 0.5], Z).dtype == fl.default_dtype()
