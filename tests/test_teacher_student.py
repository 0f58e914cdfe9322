"""filterlib.teacher_student (Part III, Fig. 3(c)/(d), Fig. 4, Fig. 5): teacher labels on real images against conv2d, starts
at a given distance, the patch spectrum against numpy, the low-variance share, the relative-loss curve, the
interpolation curve, an end-to-end SGD run on 64 MNIST images, and input checks."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import filterlib as fl
from filterlib import data, model, teacher_student, theory

f64 = torch.float64


@pytest.fixture(scope="module")
def digits():
    return data.mnist(n=64, dtype=f64, device="cpu")[0]


@pytest.fixture(scope="module")
def teachers():
    g = fl.generator(5, "cpu")
    return {"random": torch.randn(25, generator=g, dtype=f64),
            "gabor": data.gabor(**data.PAPER_GABOR, dtype=f64, device="cpu").reshape(-1)}


# ---------------------------------------------------------------------------------------------------------------
# teacher_sample


@pytest.mark.parametrize("stride,k", [(1, 576), (2, 144), (3, 64)])
def test_teacher_labels_match_conv2d(digits, teachers, stride, k):
    for w_star in teachers.values():
        Z, y = teacher_student.teacher_sample(digits, w_star, size=5, stride=stride)
        assert Z.shape == (64, k, 25) and y.shape == (64,)
        ref = F.relu(F.conv2d(digits[:, None], w_star.view(1, 1, 5, 5), stride=stride)).mean(dim=(1, 2, 3))
        torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-14)


def test_several_teachers_share_the_patches(digits, teachers):
    W = torch.stack(list(teachers.values()))
    Z, y = teacher_student.teacher_sample(digits, W)
    assert y.shape == (2, 64)
    for t, w_star in enumerate(teachers.values()):
        torch.testing.assert_close(y[t], teacher_student.teacher_sample(digits, w_star)[1], rtol=1e-12, atol=1e-14)


def test_teacher_sample_bad_input(digits, teachers):
    with pytest.raises(ValueError, match=r"w_star must have size p=25 .*reshape\(-1\)"):
        teacher_student.teacher_sample(digits, teachers["random"].view(5, 5)[:, :4].reshape(-1))
    with pytest.raises(ValueError, match="w_star must have size p=9"):
        teacher_student.teacher_sample(digits, teachers["random"], size=3)
    with pytest.raises(TypeError, match="w_star has dtype"):
        teacher_student.teacher_sample(digits, teachers["random"].float())
    with pytest.raises(ValueError, match="images must have 3 dimensions"):
        teacher_student.teacher_sample(digits[0], teachers["random"])
    with pytest.raises(ValueError, match="size must be a positive integer"):
        teacher_student.teacher_sample(digits, teachers["random"], size=0)


# ---------------------------------------------------------------------------------------------------------------
# init_at_distance


def test_starts_are_at_the_requested_distance(teachers):
    w_star = teachers["gabor"]
    fractions = [1.0, 0.75, 0.5]
    w0 = teacher_student.init_at_distance(w_star, fractions, repeats=4, seed=3)
    assert w0.shape == (12, 25) and w0.dtype == f64
    dist = (w0 - w_star).norm(dim=1).reshape(3, 4) / w_star.norm()
    torch.testing.assert_close(dist, torch.tensor(fractions, dtype=f64)[:, None].expand(3, 4), rtol=1e-12, atol=0)
    directions = (w0 - w_star) / (w0 - w_star).norm(dim=1, keepdim=True)
    gram = directions @ directions.T
    assert float((gram - torch.eye(12, dtype=f64)).abs().max()) < 0.99          # every row its own direction
    torch.testing.assert_close(teacher_student.init_at_distance(w_star, fractions, repeats=4, seed=3), w0, rtol=0, atol=0)
    assert not torch.equal(teacher_student.init_at_distance(w_star, fractions, repeats=4, seed=4), w0)


def test_start_directions_are_uniform(teachers):
    w_star = teachers["random"]
    u = teacher_student.init_at_distance(w_star, [1.0], repeats=4000, seed=0) - w_star
    u = u / w_star.norm()
    assert float(u.mean(dim=0).abs().max()) < 0.05                             # mean 0
    torch.testing.assert_close(u.T @ u / 4000, torch.eye(25, dtype=f64) / 25, rtol=0, atol=0.01)  # covariance I/p


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(fractions=[-0.5]), ValueError, "fractions must be finite and non-negative"),
    (dict(fractions=[math.nan]), ValueError, "fractions must be finite and non-negative"),
    (dict(fractions=[]), ValueError, "fractions must be a non-empty 1-D list"),
    (dict(fractions=[[1.0]]), ValueError, "fractions must be a non-empty 1-D list"),
    (dict(fractions="big"), TypeError, "fractions must be a number or a 1-D list"),
    (dict(repeats=0), ValueError, "repeats must be a positive integer"),
    (dict(seed=None), ValueError, "pass a seed"),
])
def test_init_at_distance_bad_input(teachers, kwargs, exc, match):
    args = dict(fractions=[1.0], seed=0)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        teacher_student.init_at_distance(teachers["random"], **args)


def test_init_at_distance_needs_a_nonzero_teacher():
    with pytest.raises(ValueError, match="w_star must be non-zero"):
        teacher_student.init_at_distance(torch.zeros(4, dtype=f64), 0.5, seed=0)


# ---------------------------------------------------------------------------------------------------------------
# patch_spectrum and low_variance_share


def test_patch_spectrum_matches_numpy(digits):
    Z = fl.patches(digits, 5)
    X = Z.reshape(-1, 25).numpy()
    X = X[(X != 0).any(axis=1)]
    M = X.T @ X / X.shape[0]
    ref_values, ref_vectors = np.linalg.eigh(M)
    values, vectors = teacher_student.patch_spectrum(Z)
    assert values.shape == (25,) and vectors.shape == (25, 25)
    assert bool((values[:-1] >= values[1:]).all())                             # decreasing
    np.testing.assert_allclose(values.numpy(), ref_values[::-1].clip(min=0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(M @ vectors.numpy(), vectors.numpy() * values.numpy(), atol=1e-10)
    np.testing.assert_allclose(np.abs(vectors[:, 0].numpy()), np.abs(ref_vectors[:, -1]), atol=1e-9)
    # All patches instead of the non-zero ones: the same eigenvectors, eigenvalues scaled by the non-zero fraction.
    all_values, _ = teacher_student.patch_spectrum(Z, skip_zero=False)
    torch.testing.assert_close(all_values, values * X.shape[0] / Z.reshape(-1, 25).shape[0], rtol=1e-9, atol=1e-14)


def test_low_variance_share(digits):
    Z = fl.patches(digits, 5)
    values, vectors = teacher_student.patch_spectrum(Z)
    low = values <= 1e-2 * values[0]
    assert 0 < int(low.sum()) < 25
    g = fl.generator(1, "cpu")
    inside = vectors[:, low] @ torch.randn(int(low.sum()), generator=g, dtype=f64)
    assert float(teacher_student.low_variance_share(inside, Z)) == pytest.approx(1.0, abs=1e-12)
    assert float(teacher_student.low_variance_share(vectors[:, 0], Z)) == pytest.approx(0.0, abs=1e-12)
    D = torch.randn(500, 25, generator=g, dtype=f64)
    share = teacher_student.low_variance_share(D, Z)
    assert share.shape == (500,) and bool((share >= 0).all() and (share <= 1).all())
    assert float(share.mean()) == pytest.approx(int(low.sum()) / 25, abs=0.03)   # a random direction: dim/p
    assert float(teacher_student.low_variance_share(inside, Z, threshold=1e-9)) == 0.0   # no direction that flat


def test_curvature_spectrum_matches_the_conv_moment(digits, teachers):
    Z = fl.patches(digits, 5)
    for w_star in teachers.values():
        H = theory.conv_moments(w_star, w_star, Z)["ZwZw"]                     # E[Z_w* Z_w*ᵀ], independently
        values, vectors = teacher_student.curvature_spectrum(w_star, Z)
        assert bool((values[:-1] >= values[1:]).all())
        np.testing.assert_allclose(values.numpy(), np.linalg.eigvalsh(H.numpy())[::-1].clip(min=0), rtol=1e-8,
                                   atol=1e-15)
        np.testing.assert_allclose((H @ vectors).numpy(), (vectors * values).numpy(), atol=1e-12)
        # H is the Hessian of the loss at w*: ℓ(w* + εd) ≈ ½ ε² dᵀHd for a small step along an eigenvector
        d, eps = vectors[:, 0], 1e-4
        assert float(fl.loss(w_star + eps * d, w_star, Z)) == pytest.approx(0.5 * eps ** 2 * float(values[0]),
                                                                            rel=1e-3)
        # the share with w_star uses this spectrum instead of the patch moment's
        low = values <= 1e-3 * values[0]
        inside = vectors[:, low].sum(dim=1)
        assert float(teacher_student.low_variance_share(inside, Z, w_star=w_star, threshold=1e-3)) == pytest.approx(1.0)
        assert float(teacher_student.low_variance_share(vectors[:, 0], Z, w_star=w_star)) == pytest.approx(0.0, abs=1e-12)


def test_spectrum_and_share_bad_input(digits):
    Z = fl.patches(digits, 5)
    with pytest.raises(ValueError, match="Z has no non-zero patch"):
        teacher_student.patch_spectrum(torch.zeros(3, 4, 25, dtype=f64))
    with pytest.raises(ValueError, match="Z must have 3 dimensions"):
        teacher_student.patch_spectrum(Z[0])
    with pytest.raises(TypeError, match="skip_zero must be True or False"):
        teacher_student.patch_spectrum(Z, skip_zero=1)
    with pytest.raises(ValueError, match="delta must be non-zero"):
        teacher_student.low_variance_share(torch.zeros(25, dtype=f64), Z)
    with pytest.raises(ValueError, match="delta must have size p=25"):
        teacher_student.low_variance_share(torch.ones(24, dtype=f64), Z)
    with pytest.raises(ValueError, match=r"threshold must lie in \(0, 1\)"):
        teacher_student.low_variance_share(torch.ones(25, dtype=f64), Z, threshold=1.0)
    with pytest.raises(ValueError, match="threshold must be a positive finite number"):
        teacher_student.low_variance_share(torch.ones(25, dtype=f64), Z, threshold=0.0)
    with pytest.raises(ValueError, match=r"w_star must have shape \(p,\) = \(25,\)"):
        teacher_student.curvature_spectrum(torch.ones(9, dtype=f64), Z)
    with pytest.raises(TypeError, match="w_star has dtype"):
        teacher_student.low_variance_share(torch.ones(25, dtype=f64), Z, w_star=torch.ones(25))


# ---------------------------------------------------------------------------------------------------------------
# SGD on 64 MNIST images, relative-loss and interpolation curves


@pytest.fixture(scope="module")
def trained(digits, teachers):
    w_star = teachers["gabor"]
    Z, _ = teacher_student.teacher_sample(digits, w_star)
    curvature = torch.linalg.eigvalsh(theory.conv_moments(w_star, w_star, Z)["ZwZw"])[-1]
    w0 = teacher_student.init_at_distance(w_star, [1.0, 0.5], repeats=2, seed=0)
    h = fl.sgd(w0, w_star, Z, eta=0.5 / float(curvature), steps=150, batch_size=8, seed=1, record_every=50,
               trajectory=True, progress=False)
    return Z, w_star, w0, h


def test_sgd_lowers_the_relative_loss(trained):
    Z, w_star, w0, h = trained
    rl = teacher_student.relative_loss_curve(h, Z)
    assert rl.shape == (len(h.step), 4) and h.step.tolist() == [0, 50, 100, 150]
    torch.testing.assert_close(torch.as_tensor(rl[0]), model.relative_loss(w0, w_star, Z), rtol=1e-12, atol=0)
    torch.testing.assert_close(torch.as_tensor(rl[-1]), model.relative_loss(h.w, w_star, Z), rtol=1e-12, atol=0)
    assert bool((rl[-1] < rl[0] - 1.0).all()), rl                                # at least tenfold lower
    # the paper's observation: the loss falls far faster than the distance to w*
    assert bool((h.relative_distance[-1] > 0.3 * h.relative_distance[0]).all())


def test_relative_loss_curve_bad_input(trained):
    Z, w_star, w0, h = trained
    with pytest.raises(TypeError, match="history must be a filterlib History"):
        teacher_student.relative_loss_curve(h.trajectory, Z)
    bare = fl.sgd(w0, w_star, Z, eta=0.1, steps=2, batch_size=4, seed=0, progress=False)
    with pytest.raises(ValueError, match="trajectory=True"):
        teacher_student.relative_loss_curve(bare, Z)


def test_interpolation_curve(trained):
    Z, w_star, _, h = trained
    lambdas = [0.0, 0.25, 0.5, 1.0, 1.5]
    curve = teacher_student.interpolation_curve(h.w, w_star, Z, lambdas)
    assert curve.shape == (5, 4)
    for i, lam in enumerate(lambdas):
        expected = model.relative_loss(lam * h.w + (1 - lam) * w_star, w_star, Z)
        torch.testing.assert_close(curve[i], expected, rtol=1e-9, atol=1e-9)
    assert bool((curve[0] < -25).all())                                          # λ = 0 is w* itself
    single = teacher_student.interpolation_curve(h.w[0], w_star, Z, 0.5)
    assert single.shape == (1,)
    torch.testing.assert_close(single[0], curve[2, 0], rtol=1e-9, atol=0)
    # near w* the loss is locally quadratic: halving λ lowers RL by about log10(4)
    assert bool(((curve[2] - teacher_student.interpolation_curve(h.w, w_star, Z, [0.25])[0]) > 0.3).all())


def test_interpolation_curve_bad_input(trained):
    Z, w_star, _, h = trained
    with pytest.raises(ValueError, match="lambdas contains NaN"):
        teacher_student.interpolation_curve(h.w, w_star, Z, [0.5, math.nan])
    with pytest.raises(ValueError, match="lambdas must have 1 dimensions"):
        teacher_student.interpolation_curve(h.w, w_star, Z, [[0.5]])
    with pytest.raises(ValueError, match="w must have size p=25"):
        teacher_student.interpolation_curve(h.w[:, :3], w_star, Z, [0.5])
    with pytest.raises(TypeError, match="w has dtype"):
        teacher_student.interpolation_curve(h.w.float(), w_star, Z, [0.5])


def test_relative_loss_curve_natural_log(trained):
    Z, _, _, h = trained
    ten, e = teacher_student.relative_loss_curve(h, Z), teacher_student.relative_loss_curve(h, Z, base=math.e)
    np.testing.assert_allclose(e, ten * math.log(10), rtol=1e-12)                 # ln x = ln 10 · log10 x
    with pytest.raises(ValueError, match="base must not be 1"):
        teacher_student.relative_loss_curve(h, Z, base=1)


def test_relative_loss_curve_from_the_monitor_of_sgd_images(digits, teachers):
    """Without Z: RL from the losses sgd_images recorded on its monitor, checked against model.relative_loss of
    the recorded iterates on the monitor images' patches."""
    w_star = teachers["gabor"]
    w0 = teacher_student.init_at_distance(w_star, [1.0, 0.5], seed=2)
    h = fl.sgd_images(w0, w_star, digits, eta=0.2, steps=20, batch_size=8, seed=3, monitor=40, record_every=10,
                      trajectory=True, compile=False, progress=False)
    Z_mon = model.patches(digits[:40], 5)
    np.testing.assert_allclose(teacher_student.relative_loss_curve(h), teacher_student.relative_loss_curve(h, Z_mon),
                               rtol=1e-10)
    np.testing.assert_allclose(teacher_student.relative_loss_curve(h, base=math.e),
                               teacher_student.relative_loss_curve(h) * math.log(10), rtol=1e-12)
    with pytest.raises(ValueError, match="pass a sample Z"):
        teacher_student.relative_loss_curve(fl.sgd(w0, w_star, Z_mon, eta=0.1, steps=2, seed=0, progress=False))


def test_relative_loss_images_in_chunks(digits, teachers):
    w_star = teachers["random"]
    w = teacher_student.init_at_distance(w_star, [0.3, 0.8], seed=4)
    whole = model.relative_loss(w, w_star, model.patches(digits, 5, 2))
    for chunk in (7, 64, 1000):
        got = teacher_student.relative_loss_images(w, w_star, digits, stride=2, chunk=chunk)
        torch.testing.assert_close(got, whole, rtol=1e-12, atol=0)
    one = teacher_student.relative_loss_images(w[0], w_star, digits, stride=2, chunk=10, base=math.e)
    assert one.dim() == 0 and float(one) == pytest.approx(float(whole[0]) * math.log(10), rel=1e-12)
    assert float(teacher_student.relative_loss_images(w_star, w_star, digits)) == -math.inf
    with pytest.raises(ValueError, match="w must have size p=9"):
        teacher_student.relative_loss_images(w, w_star, digits, size=3)
    with pytest.raises(TypeError, match="w has dtype"):
        teacher_student.relative_loss_images(w.float(), w_star, digits)
