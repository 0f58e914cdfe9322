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


# --------------------------------------------------------------------------------------------------------------
# Scale: f is positively homogeneous in w and Z, so huge and tiny inputs have exact answers to compare with


def test_forward_survives_products_beyond_float32_when_the_result_fits():
    w = torch.tensor([2.0 ** 70, 2.0 ** 70])
    Z = torch.tensor([[[2.0 ** 60, -(2.0 ** 60) * (1 - 2.0 ** -10)]]])      # each product 2^130 > float32's 2^128
    assert fl.forward(w, Z).item() == 2.0 ** 120                             # wᵀZ = 2^120, exactly


@pytest.mark.parametrize("name, a, s", [("loss", 2.0 ** 100, 2.0 ** 10),          # (a·s)² ≈ 2^220 > 2^128
                                         ("gradient", 2.0 ** 100, 2.0 ** 20)])   # a·s² ≈ 2^140
def test_results_beyond_float32_raise_naming_the_inputs_and_float64_computes_them(sample, name, a, s):
    Z, w_star, W = sample
    fn = getattr(fl, name)
    with pytest.raises(ValueError, match=r"exceeds the range of float32.*w and w_star.*Z.*use float64"):
        fn((a * W).float(), (a * w_star).float(), (s * Z).float())
    i, j = (2, 2) if name == "loss" else (1, 2)
    torch.testing.assert_close(fn(a * W, a * w_star, s * Z), a ** i * s ** j * fn(W, w_star, Z), rtol=1e-12, atol=0)


@pytest.mark.parametrize("dtype, a, s", [(torch.float32, 2.0 ** 62, 2.0 ** 32), (torch.float32, 2.0 ** -60, 2.0 ** 30),
                                         (f64, 2.0 ** 500, 2.0 ** 200), (f64, 2.0 ** -500, 2.0 ** 200)])
def test_gradient_and_forward_are_homogeneous_at_extreme_scales(sample, dtype, a, s):
    Z, w_star, W = (t.to(dtype) for t in sample)
    tol = dict(rtol=2e-5, atol=0) if dtype == torch.float32 else dict(rtol=1e-12, atol=0)
    got = fl.gradient(a * W, a * w_star, s * Z)
    want = fl.gradient(W.double(), w_star.double(), Z.double()) * a * s * s
    assert bool(torch.isfinite(got).all())
    torch.testing.assert_close((got.double() / (a * s * s)), want / (a * s * s), **tol)
    torch.testing.assert_close(fl.forward(a * W, s * Z).double() / (a * s),
                               fl.forward(W.double(), Z.double()), **tol)


@pytest.mark.parametrize("dtype", [torch.float32, f64])
def test_angles_do_not_depend_on_scale(sample, dtype):
    _, w_star, W = sample
    want = fl.angle(W, w_star)
    big = torch.finfo(dtype).max / 8
    tiny = torch.finfo(dtype).tiny * 4
    for a, b in ((1.0, 1.0), (big, 1.0), (tiny, 1.0), (big, tiny), (tiny, big)):
        w_scaled = (W / W.abs().max() * a).to(dtype)
        s_scaled = (w_star / w_star.abs().max() * b).to(dtype)
        got = fl.angle(w_scaled, s_scaled)
        torch.testing.assert_close(got.double(), want, rtol=0, atol=1e-5 if dtype == torch.float32 else 1e-12)
    x = torch.ones(4, dtype=dtype)
    assert fl.angle(1e30 * x, -1e30 * x).item() == pytest.approx(math.pi)
    assert fl.angle(1e-30 * x, x).item() == 0.0


def test_norm_and_unit_have_no_overflow_or_underflow():
    for dtype in (torch.float32, f64):
        fi = torch.finfo(dtype)
        for scale in (fi.max / 4, fi.tiny, fi.tiny * 2 ** -10, 1.0):
            x = torch.tensor([[3.0, 4.0], [0.0, 0.0]], dtype=f64) * 0.1
            got = fl.model.norm((x * scale / 0.5).to(dtype))
            torch.testing.assert_close(got.double(), torch.tensor([5.0, 0.0], dtype=f64) * 0.1 * scale / 0.5,
                                       rtol=1e-3 if scale < fi.tiny else 1e-6, atol=0)
        u = fl.model.unit(torch.tensor([fi.max / 2, fi.max / 2], dtype=dtype))
        torch.testing.assert_close(u.double(), torch.full((2,), 2 ** -0.5, dtype=f64), rtol=1e-6, atol=0)


def test_relative_loss_is_scale_free_at_the_extremes(sample):
    Z, w_star, W = sample
    want = fl.model.relative_loss(W, w_star, Z)
    for a, s, dtype in ((2.0 ** 100, 2.0 ** 60, torch.float32), (2.0 ** -100, 2.0 ** -60, torch.float32),
                        (2.0 ** 600, 2.0 ** 500, f64)):
        got = fl.model.relative_loss((a * W).to(dtype), (a * w_star).to(dtype), (s * Z).to(dtype))
        torch.testing.assert_close(got.double(), want, rtol=0, atol=1e-4 if dtype == torch.float32 else 1e-10)
